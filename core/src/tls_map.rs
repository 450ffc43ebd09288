//! Users from client certificates (`verify_and_map`): the names a
//! certificate carries, and nats-server's rules for finding the user they
//! stand for.
//!
//! nats-server 2.9.10 tries, in order: each email address of the subject
//! alternative names, each DNS name, each URI, as a user name; then the
//! subject as an LDAP distinguished name equal to a user name read as one
//! (RFC 4514), then one with the same RDNs in another order; then the
//! subject as Go prints it with its `DC` components appended; then the
//! subject as Go prints it.

use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};
use x509_parser::x509::{AttributeTypeAndValue, X509Name};

/// One RDN: its (attribute type, value) pairs.
pub type Rdn = Vec<(String, String)>;

/// What a client certificate says about its holder.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CertIdentity {
    pub emails: Vec<String>,
    pub dns_names: Vec<String>,
    pub uris: Vec<String>,
    /// The subject as Go's `pkix.Name.String()` prints it.
    pub subject: String,
    /// The subject's `DC` components (`DC=a,DC=b`), in certificate order.
    pub domain_components: String,
    /// The subject read as go-ldap reads a certificate's (last RDN first);
    /// `None` when it holds an attribute type go-ldap has no name for.
    pub dn: Option<Vec<Rdn>>,
}

impl CertIdentity {
    /// The identity of a DER certificate; `None` if it cannot be read.
    pub fn from_der(der: &[u8]) -> Option<CertIdentity> {
        let (_, cert) = X509Certificate::from_der(der).ok()?;
        let mut id = CertIdentity::default();
        if let Ok(Some(san)) = cert.subject_alternative_name() {
            for name in &san.value.general_names {
                match name {
                    GeneralName::RFC822Name(s) => id.emails.push(s.to_string()),
                    GeneralName::DNSName(s) => id.dns_names.push(s.to_string()),
                    GeneralName::URI(s) => id.uris.push(s.to_string()),
                    _ => {}
                }
            }
        }
        let subject = cert.subject();
        id.subject = go_name_string(subject);
        id.domain_components = subject
            .iter_rdn()
            .flat_map(|rdn| rdn.iter())
            .filter(|atv| atv.attr_type().to_id_string() == DC_OID)
            .filter_map(|atv| atv.as_str().ok())
            .map(|v| format!("DC={v}"))
            .collect::<Vec<_>>()
            .join(",");
        id.dn = ldap_dn(subject);
        Some(id)
    }

    /// The names to look up as user names, in nats-server's order, before
    /// the distinguished name is compared.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.emails
            .iter()
            .chain(&self.dns_names)
            .chain(&self.uris)
            .map(String::as_str)
    }

    /// The subject strings looked up after the distinguished name: with the
    /// `DC` components appended (if any), then alone.
    pub fn subject_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        if !self.domain_components.is_empty() {
            names.push(format!("{},{}", self.subject, self.domain_components));
        }
        names.push(self.subject.clone());
        names
    }
}

const DC_OID: &str = "0.9.2342.19200300.100.1.25";

/// The attribute types Go's `pkix` names in `Name.String()`.
fn pkix_type_name(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.6" => "C",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.3" => "CN",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.17" => "POSTALCODE",
        _ => return None,
    })
}

/// The attribute types go-ldap names when it reads a certificate: Go's,
/// and `DC`.
fn ldap_type_name(oid: &str) -> Option<&'static str> {
    pkix_type_name(oid).or((oid == DC_OID).then_some("DC"))
}

/// `name` as Go's `pkix.Name.String()` (RFC 2253 order: last RDN first;
/// unnamed types as `OID=#<hex of the DER value>`).
pub(crate) fn go_name_string(name: &X509Name<'_>) -> String {
    let rdns: Vec<_> = name.iter_rdn().collect();
    let mut out = String::new();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            let oid = atv.attr_type().to_id_string();
            match (pkix_type_name(&oid), atv.as_str()) {
                (Some(type_name), Ok(value)) => {
                    out.push_str(type_name);
                    out.push('=');
                    escape_value(value, &mut out);
                }
                _ => {
                    out.push_str(&oid);
                    out.push_str("=#");
                    for b in value_der(atv) {
                        out.push_str(&format!("{b:02x}"));
                    }
                }
            }
        }
    }
    out
}

/// The value's whole DER encoding (tag, length, contents).
fn value_der(atv: &AttributeTypeAndValue<'_>) -> Vec<u8> {
    use x509_parser::der_parser::asn1_rs::ToDer;
    atv.attr_value().to_der_vec().unwrap_or_default()
}

/// Escapes a value as Go's `pkix` does.
fn escape_value(value: &str, out: &mut String) {
    let last = value.chars().count().saturating_sub(1);
    for (k, c) in value.chars().enumerate() {
        let escape = match c {
            ',' | '+' | '"' | '\\' | '<' | '>' | ';' => true,
            ' ' => k == 0 || k == last,
            '#' => k == 0,
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The subject as go-ldap's `FromRawCertSubject` reads it: RDNs and their
/// attributes last first.
fn ldap_dn(name: &X509Name<'_>) -> Option<Vec<Rdn>> {
    let rdns: Vec<_> = name.iter_rdn().collect();
    let mut dn = Vec::new();
    for rdn in rdns.iter().rev() {
        let atvs: Vec<_> = rdn.iter().collect();
        if atvs.is_empty() {
            continue;
        }
        let mut out = Vec::new();
        for atv in atvs.iter().rev() {
            let type_name = ldap_type_name(&atv.attr_type().to_id_string())?;
            out.push((type_name.to_string(), atv.as_str().ok()?.to_string()));
        }
        dn.push(out);
    }
    Some(dn)
}

/// Reads `text` as an LDAP distinguished name (RFC 4514), as go-ldap's
/// `ParseDN` does; `None` if it is not one.
pub fn parse_dn(text: &str) -> Option<Vec<Rdn>> {
    let bytes = text.as_bytes();
    let mut dn: Vec<Rdn> = Vec::new();
    let mut rdn: Rdn = Vec::new();
    let mut buffer: Vec<u8> = Vec::new();
    let mut attr_type: Option<String> = None;
    let mut trailing_spaces = 0;
    let mut i = 0;
    let take = |buffer: &mut Vec<u8>, trailing: &mut usize| {
        let len = buffer.len() - *trailing;
        let s = String::from_utf8_lossy(&buffer[..len]).into_owned();
        buffer.clear();
        *trailing = 0;
        s
    };
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'\\' => {
                trailing_spaces = 0;
                let next = *bytes.get(i + 1)?;
                if b" \"#+,;<=>\\".contains(&next) {
                    buffer.push(next);
                    i += 2;
                    continue;
                }
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                buffer.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
                continue;
            }
            b'=' => {
                attr_type = Some(take(&mut buffer, &mut trailing_spaces));
                if bytes.get(i + 1) == Some(&b'#') {
                    return None;
                }
            }
            b',' | b'+' => {
                let t = attr_type.take().filter(|t| !t.is_empty())?;
                rdn.push((t, take(&mut buffer, &mut trailing_spaces)));
                if c == b',' {
                    dn.push(std::mem::take(&mut rdn));
                }
            }
            b' ' if buffer.is_empty() => {}
            _ => {
                if c == b' ' {
                    trailing_spaces += 1;
                } else {
                    trailing_spaces = 0;
                }
                buffer.push(c);
            }
        }
        i += 1;
    }
    if !buffer.is_empty() {
        let t = attr_type.take().filter(|t| !t.is_empty())?;
        rdn.push((t, take(&mut buffer, &mut trailing_spaces)));
        dn.push(rdn);
    }
    Some(dn)
}

fn same_attribute(a: &(String, String), b: &(String, String)) -> bool {
    a.0.eq_ignore_ascii_case(&b.0) && a.1 == b.1
}

fn same_rdn(a: &Rdn, b: &Rdn) -> bool {
    a.len() == b.len()
        && a.iter().all(|x| b.iter().any(|y| same_attribute(x, y)))
        && b.iter().all(|y| a.iter().any(|x| same_attribute(x, y)))
}

/// go-ldap's `DN.Equal`: the same RDNs in the same order.
pub fn dn_equal(a: &[Rdn], b: &[Rdn]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_rdn(x, y))
}

/// go-ldap's `DN.RDNsMatch`: the same RDNs in any order.
pub fn dn_rdns_match(a: &[Rdn], b: &[Rdn]) -> bool {
    a.len() == b.len() && a.iter().all(|x| b.iter().any(|y| same_rdn(x, y)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdn(pairs: &[(&str, &str)]) -> Rdn {
        pairs
            .iter()
            .map(|(t, v)| (t.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn distinguished_names_read_as_go_ldap_reads_them() {
        assert_eq!(
            parse_dn("CN=alice, OU=eng+O=acme ,C=US"),
            Some(vec![
                rdn(&[("CN", "alice")]),
                rdn(&[("OU", "eng"), ("O", "acme")]),
                rdn(&[("C", "US")]),
            ])
        );
        assert_eq!(
            parse_dn(r"CN=a\,b\2Cc"),
            Some(vec![rdn(&[("CN", "a,b,c")])])
        );
        assert_eq!(parse_dn("CN=#04"), None, "BER values are not read");
        assert_eq!(parse_dn("=x"), None);
        assert_eq!(parse_dn("justaname"), None);
        assert_eq!(parse_dn(""), Some(vec![]));
        let a = parse_dn("CN=x,O=y").unwrap();
        let b = parse_dn("cn=x,o=y").unwrap();
        let c = parse_dn("O=y,CN=x").unwrap();
        assert!(dn_equal(&a, &b));
        assert!(!dn_equal(&a, &c));
        assert!(dn_rdns_match(&a, &c));
        assert!(!dn_rdns_match(&a, &parse_dn("CN=x,O=z").unwrap()));
    }

    #[test]
    fn values_are_escaped_as_go_prints_them() {
        let mut s = String::new();
        escape_value(" a,b+c#d ", &mut s);
        assert_eq!(s, r"\ a\,b\+c#d\ ");
        let mut s = String::new();
        escape_value("#x", &mut s);
        assert_eq!(s, r"\#x");
    }
}
