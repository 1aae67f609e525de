//! Reading an import form (`multipart/form-data`) as it streams in: text
//! fields are collected (bounded in number and size), and the `file` field
//! is handed to [`Upload`] piece by piece, so the server never holds the
//! whole file. Used by `POST /api/v1/imports` and the admin upload form.

use crate::domain::Actor;
use crate::services::imports::{ImportRequest, Upload, UploadError};
use crate::services::{Context, RequestMeta};
use axum::extract::Multipart;
use axum::http::StatusCode;
use std::time::Duration;

/// Text fields beyond this many, or longer than this, are refused.
const MAX_FIELDS: usize = 100;
const MAX_FIELD_BYTES: usize = 4096;
/// An upload that sends nothing for this long is given up on.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a form could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    #[error("{1}")]
    Bad(StatusCode, &'static str),
    #[error(transparent)]
    Upload(#[from] UploadError),
}

fn multipart_error(e: &axum::extract::multipart::MultipartError) -> FormError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        FormError::Bad(StatusCode::PAYLOAD_TOO_LARGE, "The request is too large.")
    } else {
        FormError::Bad(StatusCode::BAD_REQUEST, "The form could not be read.")
    }
}

async fn idle<T>(f: impl Future<Output = Result<T, axum::extract::multipart::MultipartError>>) -> Result<T, FormError> {
    match tokio::time::timeout(IDLE_TIMEOUT, f).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(multipart_error(&e)),
        Err(_) => Err(FormError::Bad(StatusCode::REQUEST_TIMEOUT, "The upload stopped arriving.")),
    }
}

/// Reads the rest of the form: the import request and the stored upload.
/// A refused form leaves nothing stored.
pub async fn read_import_form(
    ctx: &Context,
    multipart: &mut Multipart,
    actor: &Actor,
    meta: &RequestMeta,
) -> Result<(ImportRequest, Option<Upload>), FormError> {
    let mut upload: Option<Upload> = None;
    let read = read_fields(ctx, multipart, actor, meta, &mut upload).await;
    match read {
        Ok(req) => Ok((req, upload)),
        Err(e) => {
            if let Some(u) = upload {
                Upload::discard(ctx, u.id).await;
            }
            Err(e)
        }
    }
}

async fn read_fields(
    ctx: &Context,
    multipart: &mut Multipart,
    actor: &Actor,
    meta: &RequestMeta,
    upload: &mut Option<Upload>,
) -> Result<ImportRequest, FormError> {
    let mut req = ImportRequest::default();
    let mut fields = 0;
    while let Some(mut field) = idle(multipart.next_field()).await? {
        fields += 1;
        if fields > MAX_FIELDS {
            return Err(FormError::Bad(StatusCode::BAD_REQUEST, "The form has too many fields."));
        }
        let name = field.name().unwrap_or("").to_owned();
        if name == "file" {
            if upload.is_some() {
                return Err(FormError::Bad(StatusCode::BAD_REQUEST, "Send one file."));
            }
            let filename = field.file_name().unwrap_or("upload.csv").to_owned();
            let mut stored = Upload::begin(ctx, &filename, actor, meta).await?;
            let streamed = async {
                while let Some(bytes) = idle(field.chunk()).await? {
                    stored.push(ctx, &bytes).await?;
                }
                Ok::<(), FormError>(())
            }
            .await;
            if let Err(e) = streamed {
                Upload::discard(ctx, stored.id).await;
                return Err(e);
            }
            *upload = Some(stored);
            continue;
        }
        let mut value = Vec::new();
        while let Some(bytes) = idle(field.chunk()).await? {
            value.extend_from_slice(&bytes);
            if value.len() > MAX_FIELD_BYTES {
                return Err(FormError::Bad(StatusCode::PAYLOAD_TOO_LARGE, "A form field is too long."));
            }
        }
        let value = String::from_utf8(value)
            .map_err(|_| FormError::Bad(StatusCode::BAD_REQUEST, "A form field is not valid UTF-8 text."))?;
        let value = Some(value).filter(|v| !v.trim().is_empty());
        match name.as_str() {
            "list" | "lists" => req.lists.extend(value),
            "basis" => req.basis = value,
            "basis_kind" => req.basis_kind = value,
            "confirm_repermission" => req.confirm_repermission = value.is_some(),
            "status" => req.status = value,
            "email_column" => req.columns.email = value,
            "name_column" => req.columns.name = value,
            "first_name_column" => req.columns.first_name = value,
            "last_name_column" => req.columns.last_name = value,
            // The CSRF token (checked before this) and anything unknown.
            _ => {}
        }
    }
    Ok(req)
}
