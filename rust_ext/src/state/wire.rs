//! Typed, lenient views of a chunk, so the hot path (one small text delta per chunk) does not
//! build a `serde_json::Value` tree: keys are matched without allocating, unknown keys are
//! skipped, and only the fields the core reads are materialised.
//!
//! Leniency (docs/wire.md#chunks): every field is a [`Lenient`], which never fails on a wrong type
//! — it drains the value and records [`Lenient::Wrong`], so one odd field never drops the chunk.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{self, Deserializer, IgnoredAny, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::Value;

/// An optional field read without ever failing the enclosing object.
#[derive(Debug, Default)]
pub(super) enum Lenient<T> {
    /// Missing or `null`.
    #[default]
    Absent,
    Present(T),
    /// Present with another JSON type than expected (an oddity).
    Wrong,
}

impl<T> Lenient<T> {
    pub fn take(&mut self) -> Lenient<T> {
        std::mem::take(self)
    }
}

/// The JSON shape a lenient target accepts.
pub(super) trait Shape {
    const SHAPE: ShapeKind;
}

#[derive(PartialEq, Eq)]
pub(super) enum ShapeKind {
    Str,
    Map,
    Seq,
}

impl Shape for String {
    const SHAPE: ShapeKind = ShapeKind::Str;
}

impl<T> Shape for Vec<T> {
    const SHAPE: ShapeKind = ShapeKind::Seq;
}

struct LenientVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Shape> Visitor<'de> for LenientVisitor<T> {
    type Value = Lenient<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if T::SHAPE == ShapeKind::Str {
            T::deserialize(v.into_deserializer()).map(Lenient::Present)
        } else {
            Ok(Lenient::Wrong)
        }
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        if T::SHAPE == ShapeKind::Str {
            T::deserialize(v.into_deserializer()).map(Lenient::Present)
        } else {
            Ok(Lenient::Wrong)
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        if T::SHAPE == ShapeKind::Map {
            return T::deserialize(MapAccessDeserializer::new(map)).map(Lenient::Present);
        }
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Lenient::Wrong)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        if T::SHAPE == ShapeKind::Seq {
            return T::deserialize(SeqAccessDeserializer::new(seq)).map(Lenient::Present);
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Lenient::Wrong)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient::Absent)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Lenient::Absent)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Lenient::Wrong)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Lenient::Wrong)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Lenient::Wrong)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Lenient::Wrong)
    }
}

impl<'de, T: Deserialize<'de> + Shape> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LenientVisitor(PhantomData))
    }
}

/// The top-level keys the core reads; a missing key is `Null`/`Absent`.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WireChunk {
    #[serde(default)]
    pub choices: Lenient<Vec<Lenient<WireChoice>>>,
    #[serde(default)]
    pub usage: Value,
    #[serde(default)]
    pub error: Value,
    #[serde(default)]
    pub object: Value,
    #[serde(default)]
    pub message: Value,
    #[serde(default)]
    pub code: Value,
    #[serde(default)]
    pub base_resp: Value,
}

#[derive(Debug, Default, Deserialize)]
pub(super) struct WireChoice {
    #[serde(default)]
    pub index: Value,
    #[serde(default)]
    pub delta: Lenient<WireDelta>,
    #[serde(default)]
    pub finish_reason: Lenient<String>,
}

impl Shape for WireChoice {
    const SHAPE: ShapeKind = ShapeKind::Map;
}

/// The delta fields of docs/wire.md#chunks and docs/wire.md#minimax. `content`, `tool_calls` and
/// `reasoning_details` stay `Value`s: they have several legitimate shapes.
#[derive(Debug, Default, Deserialize)]
pub(super) struct WireDelta {
    #[serde(default)]
    pub content: Value,
    #[serde(default)]
    pub reasoning_content: Lenient<String>,
    #[serde(default)]
    pub reasoning: Lenient<String>,
    #[serde(default)]
    pub reasoning_text: Lenient<String>,
    #[serde(default)]
    pub reasoning_details: Value,
    #[serde(default)]
    pub refusal: Lenient<String>,
    #[serde(default)]
    pub tool_calls: Value,
}

impl Shape for WireDelta {
    const SHAPE: ShapeKind = ShapeKind::Map;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrong_types_are_recorded_not_fatal() {
        let c: WireChunk = serde_json::from_str(
            r#"{"id":"x","choices":[{"index":0,"delta":{"reasoning":5,"refusal":{"a":[1]},
                "content":"hi","reasoning_content":["x"]},"finish_reason":7,"logprobs":null},
                "junk",{"delta":null}],"usage":null}"#,
        )
        .unwrap();
        let Lenient::Present(choices) = c.choices else {
            panic!()
        };
        assert_eq!(choices.len(), 3);
        let Lenient::Present(first) = &choices[0] else {
            panic!()
        };
        let Lenient::Present(delta) = &first.delta else {
            panic!()
        };
        assert!(matches!(delta.reasoning, Lenient::Wrong));
        assert!(matches!(delta.refusal, Lenient::Wrong));
        assert!(matches!(delta.reasoning_content, Lenient::Wrong));
        assert_eq!(delta.content, Value::String("hi".into()));
        assert!(matches!(first.finish_reason, Lenient::Wrong));
        assert!(matches!(choices[1], Lenient::Wrong));
        let Lenient::Present(third) = &choices[2] else {
            panic!()
        };
        assert!(matches!(third.delta, Lenient::Absent));
    }

    #[test]
    fn choices_of_the_wrong_type_do_not_fail_the_chunk() {
        let c: WireChunk =
            serde_json::from_str(r#"{"choices":{"a":1},"usage":{"prompt_tokens":1}}"#).unwrap();
        assert!(matches!(c.choices, Lenient::Wrong));
        assert!(c.usage.is_object());
    }

    #[test]
    fn the_same_view_reads_from_a_value() {
        let v: Value = serde_json::json!({"choices":[{"delta":{"content":"x"}}]});
        let c = WireChunk::deserialize(v).unwrap();
        assert!(matches!(c.choices, Lenient::Present(ref v) if v.len() == 1));
    }
}
