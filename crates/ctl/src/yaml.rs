//! A reader for the YAML that pod and container configs are written in: block mappings and
//! sequences, flow `[...]`/`{...}` collections, plain and quoted scalars, comments. Anchors,
//! tags, multi-document streams and block scalars (`|`, `>`) are refused with an error, not
//! misread. (No YAML library is vendored; this subset covers crictl's config files.)

use serde_json::{Map, Number, Value};

struct Line {
    no: usize,
    indent: usize,
    text: String,
}

/// Parses `text` into the JSON value it denotes.
pub fn parse(text: &str) -> Result<Value, String> {
    let mut lines = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let body = strip_comment(raw).trim_end();
        if body.trim().is_empty() || (lines.is_empty() && body.trim() == "---") {
            continue;
        }
        if raw.starts_with('\t') {
            return Err(format!("line {}: tabs cannot indent YAML", i + 1));
        }
        let indent = body.len() - body.trim_start().len();
        lines.push(Line {
            no: i + 1,
            indent,
            text: body.trim_start().to_string(),
        });
    }
    if lines.is_empty() {
        return Ok(Value::Null);
    }
    let mut pos = 0;
    let indent = lines[0].indent;
    let v = block(&mut lines, &mut pos, indent)?;
    if pos < lines.len() {
        return Err(format!("line {}: unexpected indentation", lines[pos].no));
    }
    Ok(v)
}

fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut prev_space = true;
    for (i, c) in line.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '#') if prev_space => return &line[..i],
            _ => {}
        }
        prev_space = c.is_whitespace();
    }
    line
}

fn is_seq_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

fn block(lines: &mut [Line], pos: &mut usize, indent: usize) -> Result<Value, String> {
    if is_seq_item(&lines[*pos].text) {
        sequence(lines, pos, indent)
    } else {
        mapping(lines, pos, indent)
    }
}

fn sequence(lines: &mut [Line], pos: &mut usize, indent: usize) -> Result<Value, String> {
    let mut items = Vec::new();
    while *pos < lines.len() && lines[*pos].indent == indent && is_seq_item(&lines[*pos].text) {
        let rest = lines[*pos].text[1..].trim_start().to_string();
        if rest.is_empty() {
            *pos += 1;
            items.push(nested(lines, pos, indent, false)?);
        } else if split_key(&rest).is_some() || is_seq_item(&rest) {
            // "- key: value" opens a mapping whose keys line up with "key".
            let offset = lines[*pos].text.len() - rest.len();
            lines[*pos].indent = indent + offset;
            lines[*pos].text = rest;
            let inner = lines[*pos].indent;
            items.push(block(lines, pos, inner)?);
        } else {
            items.push(scalar(&rest, lines[*pos].no)?);
            *pos += 1;
        }
    }
    Ok(Value::Array(items))
}

/// The block below a `key:` or `-` line: more indented, or (for a key) a sequence at
/// the same indentation; nothing there is null.
fn nested(lines: &mut [Line], pos: &mut usize, indent: usize, key: bool) -> Result<Value, String> {
    match lines.get(*pos) {
        Some(l) if l.indent > indent => {
            let inner = l.indent;
            block(lines, pos, inner)
        }
        Some(l) if key && l.indent == indent && is_seq_item(&l.text) => {
            sequence(lines, pos, indent)
        }
        _ => Ok(Value::Null),
    }
}

fn mapping(lines: &mut [Line], pos: &mut usize, indent: usize) -> Result<Value, String> {
    let mut map = Map::new();
    while *pos < lines.len() && lines[*pos].indent == indent {
        let no = lines[*pos].no;
        if is_seq_item(&lines[*pos].text) {
            break;
        }
        let text = lines[*pos].text.clone();
        let (key, rest) =
            split_key(&text).ok_or_else(|| format!("line {no}: expected `key: value`"))?;
        let key = match scalar(key, no)? {
            Value::String(s) => s,
            other => other.to_string(),
        };
        *pos += 1;
        let value = if rest.is_empty() {
            nested(lines, pos, indent, true)?
        } else {
            scalar(rest, no)?
        };
        if map.insert(key.clone(), value).is_some() {
            return Err(format!("line {no}: duplicate key {key:?}"));
        }
    }
    Ok(Value::Object(map))
}

/// `key: rest` or `key:` (outside quotes), else None.
fn split_key(text: &str) -> Option<(&str, &str)> {
    let mut quote = None;
    for (i, c) in text.char_indices() {
        match (quote, c) {
            (None, '"' | '\'') if i == 0 => quote = Some(c),
            (Some(q), _) if c == q => quote = None,
            (None, '[' | '{') if i == 0 => return None,
            (None, ':') => {
                let after = &text[i + 1..];
                if after.is_empty() || after.starts_with(' ') {
                    return Some((text[..i].trim(), after.trim()));
                }
            }
            _ => {}
        }
    }
    None
}

fn scalar(text: &str, no: usize) -> Result<Value, String> {
    let t = text.trim();
    if t.starts_with(['[', '{']) {
        let mut chars = t.char_indices().peekable();
        let v = flow(t, &mut chars, no)?;
        if chars.any(|(_, c)| !c.is_whitespace()) {
            return Err(format!("line {no}: text after a flow collection"));
        }
        return Ok(v);
    }
    if t.starts_with(['|', '>', '&', '*', '!']) {
        return Err(format!(
            "line {no}: block scalars, anchors, aliases and tags are not supported"
        ));
    }
    plain_or_quoted(t, no)
}

fn plain_or_quoted(t: &str, no: usize) -> Result<Value, String> {
    if t.len() >= 2 && t.starts_with('"') && t.ends_with('"') {
        // YAML double quotes take JSON's escapes (and more, which configs do not use).
        return serde_json::from_str::<String>(t)
            .map(Value::String)
            .map_err(|e| format!("line {no}: {e}"));
    }
    if t.len() >= 2 && t.starts_with('\'') && t.ends_with('\'') {
        return Ok(Value::String(t[1..t.len() - 1].replace("''", "'")));
    }
    Ok(match t {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        "true" | "True" | "TRUE" => Value::Bool(true),
        "false" | "False" | "FALSE" => Value::Bool(false),
        _ => {
            if let Ok(i) = t.parse::<i64>() {
                Value::Number(i.into())
            } else if let Some(n) = t
                .parse::<f64>()
                .ok()
                .filter(|_| t.contains(['.', 'e', 'E']) && !t.starts_with('.'))
                .and_then(Number::from_f64)
            {
                Value::Number(n)
            } else {
                Value::String(t.to_string())
            }
        }
    })
}

type Chars<'a> = std::iter::Peekable<std::str::CharIndices<'a>>;

/// A flow collection starting at the next character.
fn flow(src: &str, chars: &mut Chars, no: usize) -> Result<Value, String> {
    let (_, open) = chars.next().ok_or(format!("line {no}: empty flow"))?;
    let close = if open == '[' { ']' } else { '}' };
    let mut seq = Vec::new();
    let mut map = Map::new();
    loop {
        skip_ws(chars);
        match chars.peek() {
            Some(&(_, c)) if c == close => {
                chars.next();
                break;
            }
            None => return Err(format!("line {no}: unclosed {open}")),
            _ => {}
        }
        let item = flow_item(src, chars, no)?;
        if open == '{' {
            skip_ws(chars);
            if chars.next_if(|&(_, c)| c == ':').is_none() {
                return Err(format!("line {no}: expected `:` in a flow mapping"));
            }
            skip_ws(chars);
            let value = flow_item(src, chars, no)?;
            let key = match item {
                Value::String(s) => s,
                other => other.to_string(),
            };
            map.insert(key, value);
        } else {
            seq.push(item);
        }
        skip_ws(chars);
        if chars.next_if(|&(_, c)| c == ',').is_none() {
            skip_ws(chars);
            match chars.next() {
                Some((_, c)) if c == close => break,
                _ => return Err(format!("line {no}: expected `,` or `{close}`")),
            }
        }
    }
    Ok(if open == '[' {
        Value::Array(seq)
    } else {
        Value::Object(map)
    })
}

fn skip_ws(chars: &mut Chars) {
    while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
}

/// One value inside a flow collection: a nested collection, a quoted or a plain scalar.
fn flow_item(src: &str, chars: &mut Chars, no: usize) -> Result<Value, String> {
    let Some(&(start, c)) = chars.peek() else {
        return Err(format!("line {no}: unexpected end"));
    };
    if c == '[' || c == '{' {
        return flow(src, chars, no);
    }
    if c == '"' || c == '\'' {
        chars.next();
        let mut escaped = false;
        for (i, ch) in chars.by_ref() {
            if c == '"' && ch == '\\' && !escaped {
                escaped = true;
                continue;
            }
            if ch == c && !escaped {
                return plain_or_quoted(&src[start..=i], no);
            }
            escaped = false;
        }
        return Err(format!("line {no}: unclosed quote"));
    }
    let mut end = start;
    while let Some(&(i, ch)) = chars.peek() {
        if matches!(ch, ',' | ']' | '}') || (ch == ':' && src[i + 1..].starts_with([' ', ',', '}']))
        {
            break;
        }
        end = i + ch.len_utf8();
        chars.next();
    }
    plain_or_quoted(src[start..end].trim(), no)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn crictl_style_pod_config_reads() {
        let v = parse(
            "# pod\nmetadata:\n  name: web   # the name\n  namespace: default\n  attempt: 1\n\
             log_directory: /tmp\nlabels: {app: web, \"tier\": 'front'}\n\
             dns_config:\n  servers:\n  - 10.96.0.10\n  options: [ndots:5]\nlinux: {}\n",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "metadata": {"name": "web", "namespace": "default", "attempt": 1},
                "log_directory": "/tmp",
                "labels": {"app": "web", "tier": "front"},
                "dns_config": {"servers": ["10.96.0.10"], "options": ["ndots:5"]},
                "linux": {}
            })
        );
    }

    #[test]
    fn sequences_of_mappings_and_flow_commands_read() {
        let v = parse(
            "command: [\"/bin/sh\", \"-c\", \"echo a, b; sleep 1\"]\nenvs:\n- key: A\n  value: \"1\"\n-   key: B\n    value: x y\nmounts:\n  - container_path: /x\n    readonly: true\n",
        )
        .unwrap();
        assert_eq!(
            v,
            json!({
                "command": ["/bin/sh", "-c", "echo a, b; sleep 1"],
                "envs": [{"key": "A", "value": "1"}, {"key": "B", "value": "x y"}],
                "mounts": [{"container_path": "/x", "readonly": true}]
            })
        );
    }

    #[test]
    fn unsupported_yaml_is_an_error_not_a_misreading() {
        assert!(parse("a: |\n  text\n").is_err());
        assert!(parse("a: &x 1\n").is_err());
        assert!(parse("a: [1, 2\n").is_err());
        assert!(parse("a: 1\na: 2\n").is_err());
        assert!(parse("a: 1\n  b: 2\n").is_err());
    }

    #[test]
    fn scalars_take_their_types() {
        let v = parse("a: 1\nb: 1.5\nc: true\nd: ~\ne: 'it''s'\nf: \"q\\\"\"\ng: 0x\n").unwrap();
        assert_eq!(
            v,
            json!({"a": 1, "b": 1.5, "c": true, "d": null, "e": "it's", "f": "q\"", "g": "0x"})
        );
    }
}
