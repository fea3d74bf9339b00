//! Listings over time-bucketed partitions, one page at a time.

use std::ops::ControlFlow;

use chrono::{DateTime, Utc};
use scylla::response::PagingState;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;

use crate::cursor::{Bucket, Cursor, Direction};
use crate::views::Page;
use crate::{Ledger, StoreError};

impl Ledger {
    /// Reads the buckets of `read`'s window in its direction, one page at a time, keeping the
    /// rows `keep` accepts, until `read.limit` rows are found. Each page asks for no more rows
    /// than still needed, so every row read is either returned or filtered out: the cursor never
    /// skips one. Empty buckets are found by reading one row of several at once, so a sparse
    /// listing over a long window costs a few round trips, not one per bucket.
    pub(crate) async fn scan<'a, R, V>(
        &'a self,
        read: Scan,
        cursor: Option<&str>,
        keep: impl Fn(&R) -> bool,
        statement: impl Fn(String) -> (&'a PreparedStatement, V),
    ) -> Result<Page<R>, StoreError>
    where
        R: for<'frame, 'metadata> scylla::deserialize::row::DeserializeRow<'frame, 'metadata>,
        V: SerializeRow,
    {
        let buckets = read.bucket.between(read.since, read.until, read.direction);
        let (mut index, mut paging) = match cursor {
            None => (0, PagingState::start()),
            Some(text) => {
                let cursor = Cursor::decode(text, read.bucket).map_err(StoreError::Cursor)?;
                let Some(index) = buckets.iter().position(|key| *key == cursor.bucket) else {
                    return Ok(Page {
                        data: Vec::new(),
                        next_cursor: None,
                    });
                };
                let paging = cursor
                    .paging_state
                    .map_or_else(PagingState::start, PagingState::new_from_raw_bytes);
                (index, paging)
            }
        };
        let mut data = Vec::new();
        // Bounds the work of one request when a filter matches little.
        let mut pages_left = 50;
        while index < buckets.len() && data.len() < read.limit && pages_left > 0 {
            pages_left -= 1;
            let starts_bucket = paging.as_bytes_slice().is_none();
            let (prepared, values) = statement(buckets[index].clone());
            let mut prepared = prepared.clone();
            prepared.set_page_size(i32::try_from(read.limit - data.len()).unwrap_or(i32::MAX));
            let (result, response) = self
                .session
                .execute_single_page(&prepared, values, paging)
                .await?;
            let rows = result.into_rows_result()?;
            let empty = rows.rows_num() == 0;
            for row in rows.rows::<R>()? {
                let row = row?;
                if keep(&row) {
                    data.push(row);
                }
            }
            match response.into_paging_control_flow() {
                ControlFlow::Continue(next) => paging = next,
                ControlFlow::Break(()) => {
                    index += 1;
                    paging = PagingState::start();
                    if starts_bucket && empty {
                        index = self.next_filled(&buckets, index, &statement).await?;
                    }
                }
            }
        }
        if index < buckets.len() && paging.as_bytes_slice().is_none() {
            // Stopped between buckets: a cursor only where rows remain.
            index = self.next_filled(&buckets, index, &statement).await?;
        }
        let next_cursor = (index < buckets.len()).then(|| {
            Cursor {
                bucket: buckets[index].clone(),
                paging_state: paging.as_bytes_slice().map(|bytes| bytes.to_vec()),
            }
            .encode()
        });
        Ok(Page { data, next_cursor })
    }

    /// The first of `buckets` from `from` on in which `statement` reads a row (`buckets.len()`
    /// when none), looked for in growing groups read at once.
    async fn next_filled<'a, V: SerializeRow>(
        &'a self,
        buckets: &[String],
        from: usize,
        statement: &impl Fn(String) -> (&'a PreparedStatement, V),
    ) -> Result<usize, StoreError> {
        let (mut index, mut width) = (from, 1);
        while index < buckets.len() {
            let end = (index + width).min(buckets.len());
            let probes = buckets[index..end].iter().map(|key| {
                let (prepared, values) = statement(key.clone());
                let mut prepared = prepared.clone();
                prepared.set_page_size(1);
                async move {
                    let (result, response) = self
                        .session
                        .execute_single_page(&prepared, values, PagingState::start())
                        .await?;
                    let more = matches!(
                        response.into_paging_control_flow(),
                        ControlFlow::Continue(_)
                    );
                    Ok::<_, StoreError>(more || result.into_rows_result()?.rows_num() > 0)
                }
            });
            let filled = futures::future::try_join_all(probes).await?;
            if let Some(offset) = filled.iter().position(|filled| *filled) {
                return Ok(index + offset);
            }
            index = end;
            width = (width * 2).min(64);
        }
        Ok(buckets.len())
    }
}

/// Which buckets a listing reads, in which order, and how many rows it returns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Scan {
    pub(crate) bucket: Bucket,
    pub(crate) direction: Direction,
    pub(crate) since: DateTime<Utc>,
    pub(crate) until: DateTime<Utc>,
    pub(crate) limit: usize,
}
