//! The small XML documents of IM (IMDN, is-composing) read into a tree with
//! hard limits, on quick-xml. No DTD is accepted (so no entity
//! declarations, no expansion tricks): only the five predefined entities
//! and character references are decoded, anything else is an error.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

/// The largest document read.
pub const MAX_XML: usize = 64 * 1024;
/// The deepest nesting read.
pub const MAX_DEPTH: usize = 16;
/// The most elements read.
pub const MAX_ELEMENTS: usize = 512;

/// Why a document was not read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XmlError(pub String);

impl std::fmt::Display for XmlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for XmlError {}

fn fail<T>(what: impl Into<String>) -> Result<T, XmlError> {
    Err(XmlError(what.into()))
}

/// An element: its namespace, local name, attributes (by qualified name,
/// values decoded), its text (all text children joined) and its children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    /// The namespace URI, if the element has one.
    pub ns: Option<String>,
    /// The local name.
    pub name: String,
    /// The attributes, in order.
    pub attrs: Vec<(String, String)>,
    /// The text content directly inside, joined.
    pub text: String,
    /// The child elements, in order.
    pub children: Vec<Element>,
}

impl Element {
    /// The first child named `name` in the namespace `ns`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children
            .iter()
            .find(|c| c.name == name && c.ns.as_deref() == Some(ns))
    }

    /// The trimmed text of the child named `name` in `ns`.
    pub fn child_text(&self, ns: &str, name: &str) -> Option<String> {
        self.child(ns, name).map(|c| c.text.trim().to_owned())
    }
}

fn start(
    ns: ResolveResult<'_>,
    e: &quick_xml::events::BytesStart<'_>,
) -> Result<Element, XmlError> {
    let ns = match ns {
        ResolveResult::Bound(n) => Some(n.as_ref().to_owned()),
        ResolveResult::Unbound => None,
        ResolveResult::Unknown(p) => {
            return fail(format!("the prefix '{p}' is not declared"));
        }
    };
    let name = e.local_name().as_ref().to_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| XmlError(format!("a bad attribute: {e}")))?;
        let v = a
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| XmlError(format!("a bad attribute value: {e}")))?;
        attrs.push((a.key.as_ref().to_owned(), v.into_owned()));
    }
    Ok(Element {
        ns,
        name,
        attrs,
        text: String::new(),
        children: Vec::new(),
    })
}

/// Reads a document into its root element.
pub fn parse(doc: &[u8]) -> Result<Element, XmlError> {
    if doc.len() > MAX_XML {
        return fail(format!("the document is larger than {MAX_XML} bytes"));
    }
    let mut r = NsReader::from_reader(doc);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let at = r.buffer_position();
        let (ns, ev) = r
            .read_resolved_event()
            .map_err(|e| XmlError(format!("not well-formed XML after byte {at}: {e}")))?;
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(ev, Event::Empty(_));
                if root.is_some() {
                    return fail("content after the root element");
                }
                count += 1;
                if count > MAX_ELEMENTS {
                    return fail(format!("more than {MAX_ELEMENTS} elements"));
                }
                if stack.len() >= MAX_DEPTH {
                    return fail(format!("nested deeper than {MAX_DEPTH}"));
                }
                let el = start(ns, e)?;
                if empty {
                    match stack.last_mut() {
                        Some(p) => p.children.push(el),
                        None => root = Some(el),
                    }
                } else {
                    stack.push(el);
                }
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return fail("an end tag without a start");
                };
                match stack.last_mut() {
                    Some(p) => p.children.push(el),
                    None => root = Some(el),
                }
            }
            Event::Text(t) => {
                let s = t.xml10_content();
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None if s.trim().is_empty() => {}
                    None => return fail("text outside the root element"),
                }
            }
            Event::CData(t) => {
                let s = t.xml10_content();
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&s),
                    None => return fail("CDATA outside the root element"),
                }
            }
            Event::GeneralRef(g) => {
                let resolved = match g.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    Ok(None) => {
                        let name = g.xml10_content();
                        match quick_xml::escape::resolve_xml_entity(&name) {
                            Some(s) => s.to_owned(),
                            None => return fail(format!("unknown entity &{name};")),
                        }
                    }
                    Err(e) => return fail(format!("a bad character reference: {e}")),
                };
                match stack.last_mut() {
                    Some(el) => el.text.push_str(&resolved),
                    None => return fail("a reference outside the root element"),
                }
            }
            Event::DocType(_) => {
                return fail("a DOCTYPE is not accepted (no DTD, no entity declarations)");
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return fail("the document ends inside an element");
    }
    root.ok_or_else(|| XmlError("no root element".into()))
}

/// Text escaped for element content and attribute values.
pub fn escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}
