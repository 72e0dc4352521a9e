//! Streams the objects of a Graph collection page by page, following `@odata.nextLink` as
//! given: only one page (at most 999 objects) is ever held, so memory stays flat however many
//! applications the tenant has. A Graph that hands out a link it gave before (or pages without
//! end) is stopped with an error naming the link, instead of being followed forever.

use super::call::{self, Collection, GraphCall};
use super::client::GraphClient;
use crate::ids::ClientId;
use crate::{Error, Result};
use serde_json::Value;
use std::collections::{HashSet, VecDeque};

/// Above this many `--app-id`s, one listing filtered here costs fewer requests than one
/// `$filter=appId eq` request per id.
pub const FILTER_PER_ID_MAX: usize = 100;

/// Most pages read from one listing: 100,000 pages of 999 objects is far beyond the largest
/// directory quota (Entra's default is 50,000 objects, raised on request to a few hundred
/// thousand), even if Graph answered pages of one object.
pub const MAX_PAGES: u64 = 100_000;

/// The call that fetches `next_link`, an absolute URL Graph gave: only on `base` (the bearer
/// token must never be sent anywhere else), and followed as given, never rebuilt.
pub fn next_call(base: &str, next_link: &str) -> Result<GraphCall> {
    let same = match (url::Url::parse(base), url::Url::parse(next_link)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    };
    let path = next_link.get(base.len()..).filter(|p| same && p.starts_with('/'));
    match path {
        Some(p) => Ok(GraphCall { method: crate::http::Method::GET, path: p.to_string(), body: None }),
        None => Err(Error::remote(format!("@odata.nextLink {next_link} points outside {base}; not followed"))
            .with_hint("the Graph token is only ever sent to the Graph URL; check what answers there")),
    }
}

/// A page of a collection.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    /// The objects of this page.
    pub items: Vec<Value>,
    /// `@odata.nextLink` as given (see [`next_call`]); `None` on the last page.
    pub next_link: Option<String>,
}

/// Reads a collection page answered to `url`.
pub fn page(url: &str, body: Value) -> Result<Page> {
    let Value::Object(mut o) = body else {
        return Err(Error::remote(format!("GET {url}: the answer is not a JSON object")));
    };
    let items = match o.remove("value") {
        Some(Value::Array(a)) => a,
        _ => {
            return Err(Error::remote(format!("GET {url}: the answer has no 'value' array"))
                .with_hint("check the Graph URL: it must be Microsoft Graph or the keycred emulator"))
        }
    };
    let next_link = match o.remove("@odata.nextLink") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s),
        Some(v) => return Err(Error::remote(format!("GET {url}: @odata.nextLink is {v}, not a URL"))),
    };
    Ok(Page { items, next_link })
}

/// The links a listing followed, to refuse one given again (a loop) and a listing without end.
#[derive(Default)]
struct Followed {
    links: HashSet<String>,
}

impl Followed {
    /// Records `next` (given by the answer to `url`, the `pages`-th page read); an error when it
    /// was given before or the listing is over [`MAX_PAGES`].
    fn check(&mut self, url: &str, next: &str, pages: u64) -> Result<()> {
        let hint =
            "Graph (or a proxy in front of it) is misbehaving: run again later, and report the link if it persists";
        if !self.links.insert(next.to_string()) {
            return Err(Error::remote(format!(
                "GET {url}: @odata.nextLink {next} was given before; stopped after {pages} pages instead of \
                 reading the same pages forever"
            ))
            .with_hint(hint));
        }
        if pages >= MAX_PAGES {
            return Err(Error::remote(format!(
                "GET {url}: still another @odata.nextLink ({next}) after {MAX_PAGES} pages; stopped"
            ))
            .with_hint(hint));
        }
        Ok(())
    }
}

/// The objects of a collection, all of them or those of some application ids.
pub struct Objects<'a> {
    g: &'a GraphClient,
    what: Collection,
    /// Next call of the listing under way.
    next: Option<GraphCall>,
    /// Ids still to fetch one by one (few ids).
    per_id: VecDeque<ClientId>,
    /// Ids kept from a full listing (many ids); `None` keeps everything.
    keep: Option<HashSet<String>>,
    buffered: VecDeque<Value>,
    followed: Followed,
    /// Pages read so far.
    pub pages: u64,
}

impl<'a> Objects<'a> {
    /// Every object of `what`, or only those whose `appId` is in `ids` when it is not empty.
    pub fn new(g: &'a GraphClient, what: Collection, ids: &[ClientId]) -> Self {
        let (next, per_id, keep) = if ids.is_empty() {
            (Some(call::list_call(what, None)), VecDeque::new(), None)
        } else if ids.len() <= FILTER_PER_ID_MAX {
            (None, ids.iter().cloned().collect(), None)
        } else {
            let keep = ids.iter().map(|i| i.as_str().to_string()).collect();
            (Some(call::list_call(what, None)), VecDeque::new(), Some(keep))
        };
        let buffered = VecDeque::new();
        Objects { g, what, next, per_id, keep, buffered, followed: Followed::default(), pages: 0 }
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
                    Some(id) => call::list_call(self.what, Some(&id)),
                    None => return Ok(None),
                },
            };
            let url = self.g.url_of(&call);
            let body = self.g.send(call).await?.unwrap_or(Value::Null);
            let Page { items, next_link } = page(&url, body)?;
            self.pages += 1;
            if let Some(n) = &next_link {
                self.followed.check(&url, n, self.pages)?;
            }
            self.next = next_link.map(|n| next_call(self.g.base(), &n)).transpose()?;
            let keep = self.keep.as_ref();
            self.buffered.extend(items.into_iter().filter(|v| {
                keep.is_none_or(|k| {
                    v.get("appId").and_then(Value::as_str).is_some_and(|a| k.contains(&a.to_ascii_lowercase()))
                })
            }));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::fake::{reply, Fake};
    use crate::secret::SecretString;
    use serde_json::json;

    const BASE: &str = "https://graph.microsoft.com";

    #[test]
    fn pages_follow_next_link_as_given_and_only_on_the_graph_host() {
        let url = "https://graph.microsoft.com/v1.0/applications?$top=999";
        let next = "https://graph.microsoft.com/v1.0/applications?$top=999&$skiptoken=RFNwd";
        let p = page(url, json!({"@odata.context": "x", "value": [{"id": "1"}], "@odata.nextLink": next})).unwrap();
        assert_eq!(p.items, vec![json!({"id": "1"})]);
        assert_eq!(
            next_call(BASE, p.next_link.as_deref().unwrap()).unwrap().path,
            "/v1.0/applications?$top=999&$skiptoken=RFNwd"
        );
        assert_eq!(page(url, json!({"value": []})).unwrap().next_link, None);
        for evil in [
            "https://evil.example/v1.0/applications",
            "https://graph.microsoft.com.evil.example/v1.0/x",
            "http://graph.microsoft.com/v1.0/x",
        ] {
            let e = next_call(BASE, evil).unwrap_err();
            assert!(e.to_string().contains("not followed"), "{evil}: {e}");
        }
        let e = page(url, json!({"values": []})).unwrap_err();
        assert!(e.to_string().contains("no 'value' array"), "{e}");
    }

    fn client(fake: std::sync::Arc<Fake>) -> GraphClient {
        GraphClient::new(BASE, SecretString::new("t"), fake).unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_listing_reads_every_page_once() {
        let next = |n: u32| format!("{BASE}/v1.0/applications?$skiptoken=p{n}");
        let fake = Fake::new(move |r| {
            let (items, link) = match r.url.rsplit_once("$skiptoken=p") {
                None => (json!([{"appId": "a"}, {"appId": "b"}]), json!(next(2))),
                Some((_, "2")) => (json!([{"appId": "c"}]), json!(next(3))),
                Some(_) => (json!([]), Value::Null),
            };
            reply(200, &json!({"value": items, "@odata.nextLink": link}).to_string(), &[])
        });
        let g = client(fake.clone());
        let mut objects = Objects::new(&g, Collection::Applications, &[]);
        let mut seen = Vec::new();
        while let Some(o) = objects.next().await.unwrap() {
            seen.push(o["appId"].as_str().unwrap().to_string());
        }
        assert_eq!(seen, ["a", "b", "c"]);
        assert_eq!((objects.pages, fake.sent().len()), (3, 3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_next_link_given_again_stops_the_listing_with_an_error_naming_it() {
        // Graph answers every page with the same link: without the check this never ends.
        let looping = format!("{BASE}/v1.0/applications?$top=999&$skiptoken=SAME");
        let answer = json!({"value": [{"appId": "a"}], "@odata.nextLink": looping}).to_string();
        let fake = Fake::new(move |_| reply(200, &answer, &[]));
        let g = client(fake.clone());
        let mut objects = Objects::new(&g, Collection::Applications, &[]);
        // Bounded, so that the test fails rather than hangs when the check is gone.
        let mut outcome = None;
        for _ in 0..1000 {
            match objects.next().await {
                Ok(Some(_)) => continue,
                Ok(None) => panic!("a looping listing ended"),
                Err(e) => {
                    outcome = Some(e);
                    break;
                }
            }
        }
        let e = outcome.expect("a thousand objects read from one page given again and again");
        assert_eq!(e.exit_code(), 3);
        assert!(e.message().contains(&format!("@odata.nextLink {looping} was given before")), "{e}");
        // The first page gives the link, the second gives it again: two requests, not more.
        assert_eq!(fake.sent().len(), 2);
    }

    #[test]
    fn a_cycle_of_links_and_a_listing_without_end_are_refused() {
        let mut f = Followed::default();
        f.check("u", "https://g/a", 1).unwrap();
        f.check("u", "https://g/b", 2).unwrap();
        let e = f.check("u", "https://g/a", 3).unwrap_err();
        assert!(e.message().contains("https://g/a was given before; stopped after 3 pages"), "{e}");
        let e = Followed::default().check("u", "https://g/z", MAX_PAGES).unwrap_err();
        assert!(e.message().contains("after 100000 pages"), "{e}");
        assert_eq!(e.exit_code(), 3);
    }
}
