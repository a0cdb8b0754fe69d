//! CRI messages in protobuf-JSON's shape, as crictl prints them: lowerCamelCase field
//! names, 64-bit integers as strings, enum values by name, unset messages left out. The
//! field types come from the CRI descriptor set that berth-api compiles in, so nothing
//! here is written per message.

use std::collections::HashMap;
use std::sync::OnceLock;

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FieldDescriptorProto, FileDescriptorSet};
use serde::Serialize;
use serde_json::{Map, Value};

struct Types {
    messages: HashMap<String, DescriptorProto>,
    enums: HashMap<String, EnumDescriptorProto>,
}

fn types() -> &'static Types {
    static TYPES: OnceLock<Types> = OnceLock::new();
    TYPES.get_or_init(|| {
        let fds = FileDescriptorSet::decode(berth_api::runtime::v1::FILE_DESCRIPTOR_SET)
            .expect("berth-api's descriptor set decodes");
        let mut t = Types {
            messages: HashMap::new(),
            enums: HashMap::new(),
        };
        for file in fds.file {
            let scope = format!(".{}", file.package());
            for e in file.enum_type {
                t.enums.insert(format!("{scope}.{}", e.name()), e);
            }
            for m in file.message_type {
                add_message(&mut t, &scope, m);
            }
        }
        t
    })
}

fn add_message(t: &mut Types, scope: &str, m: DescriptorProto) {
    let name = format!("{scope}.{}", m.name());
    for e in &m.enum_type {
        t.enums.insert(format!("{name}.{}", e.name()), e.clone());
    }
    for n in &m.nested_type {
        add_message(t, &name, n.clone());
    }
    t.messages.insert(name, m);
}

/// `msg` (a `runtime.v1.<message>`) as protobuf JSON.
pub fn to_json<T: Serialize>(msg: &T, message: &str) -> Value {
    let v = serde_json::to_value(msg).expect("CRI messages serialize");
    convert(v, &format!(".runtime.v1.{message}"))
}

/// Each element of `msgs` as protobuf JSON.
pub fn to_json_list<T: Serialize>(msgs: &[T], message: &str) -> Value {
    Value::Array(msgs.iter().map(|m| to_json(m, message)).collect())
}

fn convert(v: Value, type_name: &str) -> Value {
    let (Some(desc), Value::Object(map)) = (types().messages.get(type_name), &v) else {
        return v;
    };
    let mut out = Map::new();
    for (key, val) in map {
        match desc.field.iter().find(|f| f.name() == key) {
            Some(f) => {
                let name = f.json_name.clone().unwrap_or_else(|| key.clone());
                out.insert(name, convert_field(val.clone(), f));
            }
            None => {
                out.insert(key.clone(), val.clone());
            }
        }
    }
    Value::Object(out)
}

fn convert_field(v: Value, f: &FieldDescriptorProto) -> Value {
    match v {
        Value::Array(items) if f.label() == Label::Repeated => {
            Value::Array(items.into_iter().map(|i| convert_one(i, f)).collect())
        }
        other => convert_one(other, f),
    }
}

fn convert_one(v: Value, f: &FieldDescriptorProto) -> Value {
    match f.r#type() {
        Type::Int64 | Type::Uint64 | Type::Sint64 | Type::Fixed64 | Type::Sfixed64 => match v {
            Value::Number(n) => Value::String(n.to_string()),
            other => other,
        },
        Type::Enum => {
            let name = v.as_i64().and_then(|n| {
                types().enums.get(f.type_name()).and_then(|e| {
                    e.value
                        .iter()
                        .find(|ev| i64::from(ev.number()) == n)
                        .map(|ev| ev.name().to_string())
                })
            });
            name.map(Value::String).unwrap_or(v)
        }
        Type::Message => {
            let is_map = types()
                .messages
                .get(f.type_name())
                .is_some_and(|m| m.options.as_ref().is_some_and(|o| o.map_entry()));
            // Map keys are user data (labels, annotations); CRI's map values are strings.
            if is_map { v } else { convert(v, f.type_name()) }
        }
        _ => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::runtime::v1::{
        ContainerMetadata, ContainerState, ContainerStatus, Mount, MountPropagation,
    };

    #[test]
    fn messages_print_as_protobuf_json() {
        let st = ContainerStatus {
            id: "c".into(),
            state: ContainerState::ContainerExited as i32,
            created_at: 1_795_586_926_737_735_535,
            exit_code: 3,
            log_path: "/x".into(),
            metadata: Some(ContainerMetadata {
                name: "n".into(),
                attempt: 1,
            }),
            labels: [("io.kubernetes.pod_name".to_string(), "v".to_string())].into(),
            mounts: vec![Mount {
                container_path: "/m".into(),
                propagation: MountPropagation::PropagationBidirectional as i32,
                ..Default::default()
            }],
            ..Default::default()
        };
        let v = to_json(&st, "ContainerStatus");
        assert_eq!(v["state"], "CONTAINER_EXITED");
        assert_eq!(v["createdAt"], "1795586926737735535");
        assert_eq!(v["exitCode"], 3);
        assert_eq!(v["logPath"], "/x");
        assert_eq!(v["metadata"]["attempt"], 1);
        assert_eq!(v["labels"]["io.kubernetes.pod_name"], "v");
        assert_eq!(v["mounts"][0]["containerPath"], "/m");
        assert_eq!(v["mounts"][0]["propagation"], "PROPAGATION_BIDIRECTIONAL");
        assert!(v["resources"].is_null(), "unset messages are null");
        assert!(v.get("log_path").is_none());
    }
}

/// Replaces unix-nanosecond times at `keys` of `obj` with RFC3339 (UTC, trailing zeros of
/// the fraction dropped; 0 is Go's zero time), as crictl's inspect shows them.
pub fn rfc3339_times(obj: &mut Value, keys: &[&str]) {
    for key in keys {
        let Some(v) = obj.get_mut(*key) else {
            continue;
        };
        let nanos = match v {
            Value::String(s) => s.parse::<i64>().ok(),
            Value::Number(n) => n.as_i64(),
            _ => None,
        };
        if let Some(n) = nanos {
            *v = Value::String(rfc3339(n));
        }
    }
}

pub fn rfc3339(nanos: i64) -> String {
    if nanos <= 0 {
        return "0001-01-01T00:00:00Z".to_string();
    }
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_nanos(nanos as u64);
    let s = humantime::format_rfc3339_nanos(t).to_string();
    let body = s
        .trim_end_matches('Z')
        .trim_end_matches('0')
        .trim_end_matches('.');
    format!("{body}Z")
}

#[cfg(test)]
mod time_tests {
    use super::*;

    #[test]
    fn times_read_like_go_rfc3339nano() {
        assert_eq!(rfc3339(0), "0001-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_000_000_000), "1970-01-01T00:00:01Z");
        assert_eq!(rfc3339(1_500_000_000), "1970-01-01T00:00:01.5Z");
        assert_eq!(
            rfc3339(1_795_587_208_902_097_572),
            "2026-11-25T06:13:28.902097572Z"
        );
    }
}
