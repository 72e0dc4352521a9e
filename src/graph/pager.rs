//! Streams the objects of a Graph collection page by page, following `@odata.nextLink` as
//! given: only one page (at most 999 objects) is ever held, so memory stays flat however many
//! applications the tenant has.

use super::call::{self as request, AppId, Collection, Page};
use super::{GraphCall, GraphClient};
use crate::Result;
use serde_json::Value;
use std::collections::{HashSet, VecDeque};

/// Above this many `--app-id`s, one listing filtered here costs fewer requests than one
/// `$filter=appId eq` request per id.
pub const FILTER_PER_ID_MAX: usize = 100;

/// The objects of a collection, all of them or those of some application ids.
pub struct Objects<'a> {
    g: &'a GraphClient,
    what: Collection,
    /// Next call of the listing under way.
    next: Option<GraphCall>,
    /// Ids still to fetch one by one (few ids).
    per_id: VecDeque<AppId>,
    /// Ids kept from a full listing (many ids); `None` keeps everything.
    keep: Option<HashSet<String>>,
    buffered: VecDeque<Value>,
    /// Pages read so far.
    pub pages: u64,
}

impl<'a> Objects<'a> {
    /// Every object of `what`, or only those whose `appId` is in `ids` when it is not empty.
    pub fn new(g: &'a GraphClient, what: Collection, ids: &[AppId]) -> Self {
        let (next, per_id, keep) = if ids.is_empty() {
            (Some(request::list_call(what, None)), VecDeque::new(), None)
        } else if ids.len() <= FILTER_PER_ID_MAX {
            (None, ids.iter().cloned().collect(), None)
        } else {
            let keep = ids.iter().map(|i| i.as_str().to_string()).collect();
            (Some(request::list_call(what, None)), VecDeque::new(), Some(keep))
        };
        Objects { g, what, next, per_id, keep, buffered: VecDeque::new(), pages: 0 }
    }

    /// The next object, `None` at the end.
    pub async fn next(&mut self) -> Result<Option<Value>> {
        loop {
            if let Some(v) = self.buffered.pop_front() {
                return Ok(Some(v));
            }
            let call = match self.next.take() {
                Some(c) => c,
                None => match self.per_id.pop_front() {
                    Some(id) => request::list_call(self.what, Some(&id)),
                    None => return Ok(None),
                },
            };
            let url = self.g.url_of(&call);
            let body = self.g.send(call).await?.unwrap_or(Value::Null);
            let Page { items, next_link } = request::page(&url, body)?;
            self.pages += 1;
            self.next = next_link.map(|n| request::next_call(self.g.base(), &n)).transpose()?;
            let keep = self.keep.as_ref();
            self.buffered.extend(items.into_iter().filter(|v| {
                keep.is_none_or(|k| {
                    v.get("appId").and_then(Value::as_str).is_some_and(|a| k.contains(&a.to_ascii_lowercase()))
                })
            }));
        }
    }
}
