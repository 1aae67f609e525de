//! A stored upload as a [`Read`], from any byte offset: it fetches one
//! stored piece at a time, so reading a file of any size holds one piece
//! (1 MiB) in memory. It runs on the parser's own thread and waits for each
//! piece there, never on the async runtime's threads.

use crate::store::Store;
use std::io::Read;
use uuid::Uuid;

pub struct StoredUpload {
    store: Store,
    runtime: tokio::runtime::Handle,
    id: Uuid,
    /// Offset of the next byte to hand out.
    offset: i64,
    /// The piece holding `offset`, and where it starts.
    piece: Vec<u8>,
    piece_start: i64,
}

impl StoredUpload {
    /// Reads import `id`'s upload from byte `offset`. Must be created
    /// inside the tokio runtime (it keeps a handle to it).
    pub fn new(store: Store, id: Uuid, offset: i64) -> Self {
        Self { store, runtime: tokio::runtime::Handle::current(), id, offset, piece: Vec::new(), piece_start: offset }
    }

    fn fetch(&mut self) -> std::io::Result<bool> {
        let (store, id, offset) = (self.store.clone(), self.id, self.offset);
        let found = self.runtime.block_on(async move {
            let mut tx = store.read().await?;
            tx.import_chunk_at(id, offset).await
        });
        match found {
            Ok(Some((start, data))) if start + data.len() as i64 > offset => {
                self.piece_start = start;
                self.piece = data;
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(e) => Err(std::io::Error::other(format!("reading the stored upload: {e}"))),
        }
    }
}

impl Read for StoredUpload {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let in_piece = self.offset - self.piece_start;
        if (in_piece < 0 || in_piece >= self.piece.len() as i64) && !self.fetch()? {
            return Ok(0);
        }
        let from = (self.offset - self.piece_start) as usize;
        let n = buf.len().min(self.piece.len() - from);
        buf[..n].copy_from_slice(&self.piece[from..from + n]);
        self.offset += n as i64;
        Ok(n)
    }
}
