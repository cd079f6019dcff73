//! Usage mapping (docs/wire.md#usage). A value is present when it is a JSON number (`0` included);
//! `null`, a missing key or another type fall through to the next source.

use serde_json::{Map, Value};

use crate::types::Usage;

fn count(v: Option<&Value>) -> Option<u64> {
    let n = v?.as_number()?;
    n.as_u64().or_else(|| {
        // Some servers write counts as floats (`12.0`); a negative count is not a count.
        n.as_f64()
            .filter(|f| f.is_finite() && *f >= 0.0)
            .map(|f| f.round() as u64)
    })
}

fn money(v: Option<&Value>) -> Option<f64> {
    v?.as_number()?.as_f64()
}

fn nested<'a>(u: &'a Map<String, Value>, outer: &str, inner: &str) -> Option<&'a Value> {
    u.get(outer)?.get(inner)
}

/// Map one wire `usage` object to the canonical usage. The last usage object of a stream wins
/// as a whole, so this never merges with earlier values.
pub(super) fn map_usage(u: &Map<String, Value>) -> Usage {
    let input = count(u.get("prompt_tokens")).unwrap_or(0);
    let output = count(u.get("completion_tokens")).unwrap_or(0);
    let cache_read = count(u.get("cache_read_input_tokens"))
        .or_else(|| count(nested(u, "prompt_tokens_details", "cached_tokens")))
        .unwrap_or(0);
    let cache_write = count(u.get("cache_creation_input_tokens"))
        .or_else(|| count(nested(u, "prompt_tokens_details", "cache_write_tokens")))
        .unwrap_or(0);
    let total_tokens = count(u.get("total_tokens")).unwrap_or(input + output);
    let cost_input =
        money(nested(u, "cost_details", "upstream_inference_prompt_cost")).unwrap_or(0.0);
    let cost_output = money(nested(
        u,
        "cost_details",
        "upstream_inference_completions_cost",
    ))
    .unwrap_or(0.0);
    let cost_total = money(nested(u, "cost_details", "upstream_inference_cost"))
        .or_else(|| money(u.get("cost")))
        .unwrap_or(cost_input + cost_output);
    Usage {
        input,
        output,
        cache_read,
        cache_write,
        total_tokens,
        cost_input,
        cost_output,
        cost_cache_read: 0.0,
        cost_cache_write: 0.0,
        cost_total,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> Usage {
        map_usage(v.as_object().unwrap())
    }

    #[test]
    fn openrouter_usage_of_the_transcript() {
        let u = map(
            json!({"prompt_tokens":812,"completion_tokens":64,"total_tokens":876,
            "prompt_tokens_details":{"cached_tokens":768},"cost":0.000412,
            "cost_details":{"upstream_inference_cost":null}}),
        );
        assert_eq!((u.input, u.output, u.total_tokens), (812, 64, 876));
        assert_eq!((u.cache_read, u.cache_write), (768, 0));
        assert_eq!(
            (u.cost_input, u.cost_output, u.cost_total),
            (0.0, 0.0, 0.000412)
        );
    }

    #[test]
    fn anthropic_style_cache_fields_take_precedence_and_zero_is_present() {
        let u = map(json!({"prompt_tokens":10,"completion_tokens":2,
            "cache_read_input_tokens":0,"cache_creation_input_tokens":7,
            "prompt_tokens_details":{"cached_tokens":9,"cache_write_tokens":3}}));
        assert_eq!((u.cache_read, u.cache_write), (0, 7));
    }

    #[test]
    fn total_falls_back_to_input_plus_output_without_cache_counts() {
        let u = map(
            json!({"prompt_tokens":10,"completion_tokens":5,"total_tokens":null,
            "cache_read_input_tokens":100}),
        );
        assert_eq!(u.total_tokens, 15);
    }

    #[test]
    fn cost_total_precedence() {
        let u = map(
            json!({"cost":1.0,"cost_details":{"upstream_inference_cost":2.5,
            "upstream_inference_prompt_cost":0.5,"upstream_inference_completions_cost":0.25}}),
        );
        assert_eq!(
            (u.cost_input, u.cost_output, u.cost_total),
            (0.5, 0.25, 2.5)
        );
        let u = map(json!({"cost_details":{"upstream_inference_prompt_cost":0.5,
            "upstream_inference_completions_cost":0.25}}));
        assert_eq!(u.cost_total, 0.75);
    }

    #[test]
    fn non_numbers_are_absent() {
        let u = map(json!({"prompt_tokens":"12","completion_tokens":3.0,"total_tokens":-1}));
        assert_eq!((u.input, u.output, u.total_tokens), (0, 3, 3));
    }
}
