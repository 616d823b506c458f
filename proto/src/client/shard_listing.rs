//! Listing every shard of a stream across ListShards pages.

use super::{Client, ClientError};
use crate::model::{ListShardsInput, Shard, StreamRef};

/// Most ListShards pages followed before giving up on a service that never stops paging.
/// A stream has at most a few thousand shards and a page holds up to 1 000 (10 000 on AWS).
const MAX_PAGES: usize = 10_000;

impl Client {
    /// Every shard of the stream, closed ones included, following `NextToken` across
    /// ListShards pages (each page retried per the client's [`RetryPolicy`](super::RetryPolicy)).
    ///
    /// An absent or empty `NextToken` ends the listing: AWS never sends an empty one, and
    /// sending it back would be refused. A service still paging after 10 000 pages is
    /// reported as [`ClientError::Decode`].
    pub async fn list_all_shards(&self, stream: &StreamRef) -> Result<Vec<Shard>, ClientError> {
        let mut shards = Vec::new();
        let mut input = ListShardsInput {
            stream: stream.clone(),
            ..ListShardsInput::default()
        };
        for _ in 0..MAX_PAGES {
            let page = self.list_shards(&input).await?;
            shards.extend(page.shards);
            match page.next_token {
                Some(token) if !token.is_empty() => {
                    // With a NextToken the stream must not be named again.
                    input = ListShardsInput {
                        next_token: Some(token),
                        ..ListShardsInput::default()
                    };
                }
                _ => return Ok(shards),
            }
        }
        Err(ClientError::Decode(
            format!("ListShards did not stop paginating after {MAX_PAGES} pages").into(),
        ))
    }
}
