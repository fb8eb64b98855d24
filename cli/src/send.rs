//! `gantry send`: a payload file, signed and posted exactly as GitHub does.

use gantry_core::github::{headers, signature};

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("POST {url} failed: {reason}")]
    Http { url: String, reason: String },
}

pub struct Delivery<'a> {
    pub url: &'a str,
    pub secret: &'a str,
    pub event: &'a str,
    pub delivery_id: String,
    /// Send as `application/x-www-form-urlencoded` (`payload=`), as a hook
    /// with content type "form" does.
    pub form: bool,
    pub payload: Vec<u8>,
}

/// The answer: status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Delivery<'_> {
    /// The body and content type GitHub would send.
    pub fn body(&self) -> (Vec<u8>, &'static str) {
        if self.form {
            let encoded = form_urlencoded::Serializer::new(String::new())
                .append_pair("payload", &String::from_utf8_lossy(&self.payload))
                .finish();
            (encoded.into_bytes(), "application/x-www-form-urlencoded")
        } else {
            (self.payload.clone(), "application/json")
        }
    }

    pub async fn send(&self, client: &reqwest::Client) -> Result<Answer, SendError> {
        let (body, content_type) = self.body();
        let signature = signature::sign(self.secret.as_bytes(), &body);
        let response = client
            .post(self.url)
            .header("content-type", content_type)
            .header("user-agent", "GitHub-Hookshot/gantry-send")
            .header(headers::EVENT, self.event)
            .header(headers::DELIVERY, &self.delivery_id)
            .header(headers::SIGNATURE_256, signature)
            .body(body)
            .send()
            .await
            .map_err(|e| SendError::Http {
                url: self.url.to_owned(),
                reason: e.to_string(),
            })?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| SendError::Http {
            url: self.url.to_owned(),
            reason: e.to_string(),
        })?;
        Ok(Answer { status, body })
    }
}

pub fn read_payload(path: &str) -> Result<Vec<u8>, SendError> {
    std::fs::read(path).map_err(|source| SendError::Read {
        path: path.to_owned(),
        source,
    })
}
