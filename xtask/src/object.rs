//! Reading the JSON objects kubectl returns: fields by pointer, labels and
//! annotations, and an object reduced to what an apply would send.

use serde_json::Value;

/// The string at a JSON pointer (`/metadata/name`) of an object.
pub fn str_at<'a>(v: &'a Value, pointer: &str) -> Option<&'a str> {
    v.pointer(pointer).and_then(Value::as_str)
}

pub fn label<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer("/metadata/labels")?.get(key)?.as_str()
}

pub fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o.pointer("/metadata/annotations")?.get(key)?.as_str()
}

pub fn name(o: &Value) -> &str {
    str_at(o, "/metadata/name").unwrap_or_default()
}

pub fn namespace(o: &Value) -> &str {
    str_at(o, "/metadata/namespace").unwrap_or_default()
}

/// An object's kind and name: how the tool keys live objects.
pub fn kind_and_name(o: &Value) -> Option<(String, String)> {
    Some((
        str_at(o, "/kind")?.to_owned(),
        str_at(o, "/metadata/name")?.to_owned(),
    ))
}

/// The fields the API server writes itself; an object without them is what
/// an apply would send, and what "changed" is decided on.
const SERVER_WRITTEN: [&str; 6] = [
    "uid",
    "resourceVersion",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
];

/// A live object reduced to what an apply would send back: no status and
/// no fields the server writes.
pub fn applyable(mut o: Value) -> Value {
    if let Some(m) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in SERVER_WRITTEN {
            m.remove(f);
        }
    }
    if let Some(m) = o.as_object_mut() {
        m.remove("status");
    }
    o
}

/// Whether two versions of an object differ in anything but server-written
/// fields and status (a status update alone changes the resourceVersion).
pub fn content_differs(a: &Value, b: &Value) -> bool {
    applyable(a.clone()) != applyable(b.clone())
}
