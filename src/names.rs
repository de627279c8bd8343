//! The names canary takes from its user and writes into generated files and Kubernetes
//! objects: the checks that keep them valid. Below the settings, the gate and Argo CD, which
//! all check names.

use crate::error::{Error, bad_input};

/// A DNS-1123 label: what Kubernetes accepts as a name, and safe in a file name and in YAML.
pub fn check_label(what: &str, value: &str, max: usize) -> Result<(), Error> {
    let bytes = value.as_bytes();
    let ok = !value.is_empty()
        && value.len() <= max
        && bytes
            .iter()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric();
    if ok {
        Ok(())
    } else {
        Err(bad_input(format!(
            "{what} {value:?} is not valid: use lower-case letters, digits and '-', starting and \
             ending with a letter or digit, at most {max} characters"
        )))
    }
}

/// Leaves room for the `-web-v1` that gap appends to name the v1 deployment.
pub const SERVICE_MAX_LEN: usize = 63 - "-web-v1".len();

pub fn check_service(service: &str) -> Result<(), Error> {
    check_label("service name", service, SERVICE_MAX_LEN)
}

/// A DNS name, lower case, as a VirtualService host.
pub fn check_host(host: &str) -> Result<(), Error> {
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b.iter()
                    .all(|c| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'-'))
                && b[0] != b'-'
                && b[b.len() - 1] != b'-'
        });
    if ok {
        Ok(())
    } else {
        Err(bad_input(format!(
            "host {host:?} is not a DNS name: use lower-case labels of letters, digits and '-' \
             separated by dots"
        )))
    }
}

/// A kubeconfig context name as kubectl takes it: anything printable, but not empty and not
/// so long or so odd that it cannot be a name in a kubeconfig file.
pub fn check_context(context: &str) -> Result<(), Error> {
    if !context.is_empty() && context.len() <= 253 && !context.chars().any(char::is_control) {
        Ok(())
    } else {
        Err(bad_input(format!(
            "kubeconfig context {context:?} is not a name: give a context of your kubeconfig \
             (`kubectl config get-contexts` lists them)"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_names_are_dns_labels_with_room_for_the_v1_suffix() {
        check_service("my-service").unwrap();
        check_service(&"a".repeat(SERVICE_MAX_LEN)).unwrap();
        for bad in [
            "",
            "My-Service",
            "my_service",
            "-a",
            "a-",
            "a/b",
            "..",
            &"a".repeat(57),
        ] {
            assert!(check_service(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn hosts_are_lower_case_dns_names() {
        check_host("my-service.gservice.emarsys.net").unwrap();
        for bad in [
            "", "a..b", "a b", "a:80", "a#b", "{a: b}", "a\nb", "-a.b", "A.b", "a.b-",
        ] {
            assert!(check_host(bad).is_err(), "{bad:?} accepted");
        }
    }
}
