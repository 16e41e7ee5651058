//! The result budget: every tool's answer cut to a number of characters
//! of JSON a model's context can hold, saying what was left out and how
//! to get the rest (docs/mcp.md, "Results").

use serde_json::{Value, json};

use crate::error::{ToolError, ToolResult};

/// The parameter every tool takes: the most characters of its result.
pub const BUDGET_PARAM: &str = "max_result_bytes";
/// Default result budget: about 10,000 tokens of a model's context.
pub const DEFAULT_BUDGET: usize = 40_000;
/// Largest result budget a client may ask for.
pub const MAX_BUDGET: usize = 2_000_000;

/// Takes the result budget out of a call's arguments.
pub fn take_budget(args: &mut Value) -> ToolResult<usize> {
    let Some(v) = args.as_object_mut().and_then(|o| o.remove(BUDGET_PARAM)) else { return Ok(DEFAULT_BUDGET) };
    match v.as_u64().map(|n| n as usize) {
        Some(n) if (1_000..=MAX_BUDGET).contains(&n) => Ok(n),
        _ => Err(ToolError::new(format!("{BUDGET_PARAM}: expected a whole number from 1000 to {MAX_BUDGET}, got {v}"))),
    }
}

/// Serialized length of a JSON value.
fn json_len(v: &Value) -> usize {
    serde_json::to_string(v).map_or(0, |s| s.len())
}

/// Serialized length of a list whose items are `sizes` long.
fn list_len(sizes: &[usize]) -> usize {
    2 + sizes.iter().sum::<usize>() + sizes.len().saturating_sub(1)
}

/// Cuts a result to `budget` characters of JSON: rows go from the end of
/// its largest lists first, then the longest texts are shortened. What was
/// left out is said in `result_truncated` (and `truncated`), and a paged
/// result's `returned` and `next_offset` follow the rows kept, so the
/// next page starts at the first row left out.
pub fn fit(v: &mut Value, budget: usize) {
    let before = json_len(v);
    if before <= budget || !v.is_object() {
        return;
    }
    let mut omitted = serde_json::Map::new();
    // Lists, largest first, each cut to what the budget leaves.
    let mut lists: Vec<(String, usize)> = v
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, x)| x.as_array().map(|a| (k.clone(), list_len(&a.iter().map(json_len).collect::<Vec<_>>()))))
        .collect();
    lists.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    for (key, _) in lists {
        let total = json_len(v);
        if total <= budget {
            break;
        }
        let Some(items) = v.get(&key).and_then(Value::as_array) else { continue };
        let sizes: Vec<usize> = items.iter().map(json_len).collect();
        let rest = total - list_len(&sizes);
        // Keep the longest prefix that fits (with room for the note).
        let room = budget.saturating_sub(rest + 400);
        let (mut keep, mut used) = (0, 2);
        for s in &sizes {
            let add = s + usize::from(keep > 0);
            if used + add > room {
                break;
            }
            used += add;
            keep += 1;
        }
        if let Some(a) = v.get_mut(&key).and_then(Value::as_array_mut) {
            omitted.insert(key.clone(), json!(a.len() - keep));
            a.truncate(keep);
        }
        if key != "columns" && v.get("returned").is_some() {
            let offset = v.get("offset").and_then(Value::as_u64).unwrap_or(0) as usize;
            v["returned"] = json!(keep);
            if v.get("total").is_some() {
                v["next_offset"] = json!(offset + keep);
            }
        }
    }
    let note = |omitted: &serde_json::Map<String, Value>| {
        json!({
            BUDGET_PARAM: budget,
            "full_bytes": before,
            "omitted": omitted,
            "hint": format!("the result was cut to {budget} characters: page on with next_offset where there is one, narrow the question (kfl, limit, format compact, fewer columns), or raise {BUDGET_PARAM} (at most {MAX_BUDGET})"),
        })
    };
    v["truncated"] = json!(true);
    v["result_truncated"] = note(&omitted);
    // Still too long: shorten the longest texts (a body, a drawing), never the note.
    while json_len(v) > budget {
        let Some(note_value) = v.as_object_mut().and_then(|o| o.remove("result_truncated")) else { break };
        let found = longest_text(v, String::new());
        v["result_truncated"] = note_value;
        let Some(path) = found else { break };
        let over = json_len(v) - budget + 8;
        let Some(Value::String(s)) = v.pointer_mut(&path) else { break };
        let mut cut = s.len().saturating_sub(over);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
        omitted.insert(path.trim_start_matches('/').replace('/', "."), json!("text cut"));
        v["result_truncated"] = note(&omitted);
        if cut == 0 {
            break;
        }
    }
}

/// The JSON pointer of the longest string in `v`.
fn longest_text(v: &Value, at: String) -> Option<String> {
    let mut best: Option<(usize, String)> = None;
    let mut consider = |len: usize, p: String| {
        if len > 64 && best.as_ref().is_none_or(|(l, _)| len > *l) {
            best = Some((len, p));
        }
    };
    match v {
        Value::String(s) => consider(s.len(), at),
        Value::Object(m) => {
            for (k, x) in m {
                if let Some(p) = longest_text(x, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")))
                    && let Some(Value::String(s)) = v.pointer(&p[at.len()..])
                {
                    consider(s.len(), p);
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                if let Some(p) = longest_text(x, format!("{at}/{i}"))
                    && let Some(Value::String(s)) = v.pointer(&p[at.len()..])
                {
                    consider(s.len(), p);
                }
            }
        }
        _ => {}
    }
    best.map(|(_, p)| p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::page;

    #[test]
    fn results_fit_their_budget_and_say_how_to_get_the_rest() {
        // A page of 200 rows of about 100 characters: cut to the budget,
        // next_offset at the first row left out.
        let rows: Vec<Value> = (0..200).map(|i| json!({"id": format!("s/{i}"), "pad": "x".repeat(80)})).collect();
        let mut v = page("calls", rows, 500, 100, Vec::new());
        fit(&mut v, 5_000);
        let kept = v["calls"].as_array().map_or(0, Vec::len);
        assert!(json_len(&v) <= 5_000 && kept > 30, "{} bytes, {kept} rows", json_len(&v));
        assert_eq!((v["returned"].as_u64(), v["next_offset"].as_u64()), (Some(kept as u64), Some(100 + kept as u64)));
        assert_eq!(v["calls"][kept - 1]["id"], json!(format!("s/{}", kept - 1)), "rows go from the end");
        assert_eq!(v["result_truncated"]["omitted"]["calls"], json!(200 - kept));
        // No list to cut: the longest text is shortened, on a character boundary.
        let mut d = json!({"id": "s/1", "response_body": {"text": "é".repeat(20_000), "encoding": "utf-8"}});
        fit(&mut d, 3_000);
        let text = d["response_body"]["text"].as_str().unwrap_or_default();
        assert!(json_len(&d) <= 3_000 && text.ends_with('…') && text.len() > 1_000, "{}", json_len(&d));
        assert_eq!(d["result_truncated"]["omitted"]["response_body.text"], json!("text cut"));
        // Within budget: untouched.
        let mut small = json!({"rows": [1, 2, 3]});
        fit(&mut small, 1_000);
        assert_eq!(small, json!({"rows": [1, 2, 3]}));
    }

    #[test]
    fn the_budget_parameter_is_checked() {
        assert_eq!(take_budget(&mut json!({"kfl": ""})).ok(), Some(DEFAULT_BUDGET));
        let mut a = json!({"kfl": "", BUDGET_PARAM: 5000});
        assert_eq!(take_budget(&mut a).ok(), Some(5000));
        assert_eq!(a, json!({"kfl": ""}), "taken out before the tool's own parameters are read");
        for bad in [json!(10), json!(3_000_000), json!("big"), json!(-1)] {
            assert!(take_budget(&mut json!({ BUDGET_PARAM: bad })).is_err());
        }
    }
}
