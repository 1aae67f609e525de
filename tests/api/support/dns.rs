//! A small DNS server on loopback answering TXT questions from a fixture
//! zone, for the sender authentication tests (`TIDINGS_DNS_SERVER`). One
//! thread, UDP only; answers are hand-encoded (RFC 1035 §4): a name in the
//! zone gets its TXT records, any other name NXDOMAIN. The zone can change
//! while the server runs.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

type Zone = Arc<Mutex<HashMap<String, Vec<String>>>>;

pub struct TestDns {
    addr: SocketAddr,
    zone: Zone,
    stop: Arc<AtomicBool>,
}

impl TestDns {
    pub fn start() -> TestDns {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind DNS");
        socket.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
        let addr = socket.local_addr().expect("addr");
        let zone: Zone = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (z, s) = (zone.clone(), stop.clone());
        thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !s.load(Ordering::Relaxed) {
                let Ok((n, peer)) = socket.recv_from(&mut buf) else { continue };
                if let Some(answer) = answer(&buf[..n], &z) {
                    let _ = socket.send_to(&answer, peer);
                }
            }
        });
        TestDns { addr, zone, stop }
    }

    /// `ip:port`, for `TIDINGS_DNS_SERVER`.
    pub fn server(&self) -> String {
        self.addr.to_string()
    }

    /// Adds a TXT record at `name`.
    pub fn txt(&self, name: &str, value: &str) {
        self.zone.lock().unwrap().entry(name.to_ascii_lowercase()).or_default().push(value.to_owned());
    }

    /// Removes every TXT record at `name`.
    pub fn remove(&self, name: &str) {
        self.zone.lock().unwrap().remove(&name.to_ascii_lowercase());
    }
}

impl Drop for TestDns {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn answer(query: &[u8], zone: &Zone) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // The question: labels up to the root, then QTYPE and QCLASS.
    let mut i = 12;
    let mut labels = Vec::new();
    loop {
        let len = *query.get(i)? as usize;
        i += 1;
        if len == 0 {
            break;
        }
        labels.push(String::from_utf8_lossy(query.get(i..i + len)?).to_ascii_lowercase());
        i += len;
    }
    let qtype = u16::from_be_bytes([*query.get(i)?, *query.get(i + 1)?]);
    let question = &query[12..i + 4];
    let name = labels.join(".");
    let records = zone.lock().unwrap().get(&name).cloned();
    let answers: Vec<String> = match (&records, qtype) {
        (Some(r), 16) => r.clone(),
        _ => Vec::new(),
    };
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&query[..2]); // id
    let rcode = if records.is_none() { 3 } else { 0 };
    out.extend_from_slice(&[0x81, 0x80 | rcode]); // QR, RD, RA
    out.extend_from_slice(&1u16.to_be_bytes());
    out.extend_from_slice(&(answers.len() as u16).to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(question);
    for txt in answers {
        let mut rdata = Vec::new();
        for chunk in txt.as_bytes().chunks(255) {
            rdata.push(chunk.len() as u8);
            rdata.extend_from_slice(chunk);
        }
        out.extend_from_slice(&[0xC0, 0x0C, 0, 16, 0, 1, 0, 0, 0, 0]);
        out.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        out.extend_from_slice(&rdata);
    }
    Some(out)
}

/// The From domain of every [`TestApp`](super::app::TestApp).
pub const FROM_DOMAIN: &str = "hospital.test";
/// The DKIM selector the rig uses.
pub const SELECTOR: &str = "t2026";

/// A sender-authentication rig: a fixture zone on loopback and an RSA key
/// made with OpenSSL. [`AuthRig::publish_all`] publishes SPF, DMARC and the
/// key, so every check passes; tests then take one piece away.
pub struct AuthRig {
    pub dns: TestDns,
    pub key_path: String,
    /// The `p=` value of the key.
    pub public: String,
    _dir: tempfile::TempDir,
}

impl AuthRig {
    pub fn new(bits: u32) -> AuthRig {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("dkim.pem");
        let status = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", &format!("rsa_keygen_bits:{bits}"), "-out"])
            .arg(&key)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl");
        assert!(status.success(), "openssl made a {bits}-bit key");
        let der = std::process::Command::new("openssl")
            .args(["pkey", "-pubout", "-outform", "DER", "-in"])
            .arg(&key)
            .output()
            .expect("openssl");
        use base64::Engine;
        let public = base64::engine::general_purpose::STANDARD.encode(&der.stdout);
        AuthRig { dns: TestDns::start(), key_path: key.to_str().expect("utf-8 path").to_owned(), public, _dir: dir }
    }

    pub fn spf_name(&self) -> String {
        FROM_DOMAIN.to_owned()
    }

    pub fn dmarc_name(&self) -> String {
        format!("_dmarc.{FROM_DOMAIN}")
    }

    pub fn dkim_name(&self) -> String {
        format!("{SELECTOR}._domainkey.{FROM_DOMAIN}")
    }

    /// SPF, DMARC and the DKIM key, all published for the From domain.
    pub fn publish_all(&self) {
        self.dns.txt(&self.spf_name(), "v=spf1 ip4:127.0.0.1 -all");
        self.dns.txt(&self.dmarc_name(), "v=DMARC1; p=none");
        self.dns.txt(&self.dkim_name(), &format!("v=DKIM1; k=rsa; p={}", self.public));
    }

    /// Settings for `TestApp::spawn_with`: the gate required, DNS pointed at
    /// the fixture zone, and (with `key`) the rig's key signing for the From
    /// domain.
    pub fn settings(&self, key: bool) -> Vec<(&'static str, String)> {
        let mut s = vec![("TIDINGS_SENDER_AUTH", "require".to_owned()), ("TIDINGS_DNS_SERVER", self.dns.server())];
        if key {
            s.push(("TIDINGS_DKIM_SELECTOR", SELECTOR.to_owned()));
            s.push(("TIDINGS_DKIM_KEY_FILE", self.key_path.clone()));
        }
        s
    }
}

/// `settings` as the `&[(&str, &str)]` `TestApp::spawn_with` takes.
pub fn as_pairs<'a>(settings: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    settings.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// `POST /api/v1/updates/{id}/send` with `body`: the status and JSON answer.
pub async fn try_send(app: &super::app::TestApp, id: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let res = app.api(reqwest::Method::POST, &format!("/updates/{id}/send")).json(&body).send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

/// The codes of the checks a refused send names.
pub fn failed_checks(answer: &serde_json::Value) -> Vec<String> {
    answer["error"]["checks"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["code"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}
