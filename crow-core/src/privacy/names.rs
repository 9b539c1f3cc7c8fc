//! Which query-parameter names and JSON keys mark a secret or personal data.
//!
//! Names are compared in a compact form: ASCII-lowercased with `_`, `-`, `.` and spaces
//! removed, so `access_token`, `accessToken`, `Access-Token` and `access.token` are one name.
//! A name is sensitive when its compact form is in the exact list, or ends with one of the
//! suffixes (`userEmail`, `csrf_token`, `x-amz-security-token`, `client_secret`, ...).

use super::detect::Kind;

/// Where a name is looked up: query strings are stricter (`key`, `code`, `sid` are
/// credentials there, but ordinary property names in JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place {
    Query,
    Json,
}

const BUF: usize = 48;

/// The compact form of `name` (its last `BUF` compact bytes for longer names), in `buf`.
fn compact<'b>(name: &str, buf: &'b mut [u8; BUF]) -> &'b [u8] {
    let mut n = BUF;
    for &c in name.as_bytes().iter().rev() {
        if matches!(c, b'_' | b'-' | b'.' | b' ') {
            continue;
        }
        if n == 0 {
            break;
        }
        n -= 1;
        buf[n] = c.to_ascii_lowercase();
    }
    &buf[n..]
}

/// The kind of data a parameter or key of this name holds, when it is sensitive.
pub(crate) fn sensitive(name: &str, place: Place) -> Option<Kind> {
    if name.is_empty() {
        return None;
    }
    let mut buf = [0u8; BUF];
    let c = compact(name, &mut buf);
    let exact = match c {
        // e-mail
        b"email" | b"emailaddress" | b"email1" | b"email2" => Some(Kind::Email),
        // phone
        b"phone" | b"phonenumber" | b"phone1" | b"phone2" | b"telephone" | b"tel" | b"mobilephone"
        | b"mobilenumber" | b"cellphone" | b"msisdn" => Some(Kind::Phone),
        b"ssn" | b"socialsecuritynumber" => Some(Kind::Ssn),
        b"cardnumber" | b"ccnumber" | b"creditcard" | b"creditcardnumber" | b"cardnum" | b"pan" | b"cvv" | b"cvc"
        | b"cvv2" | b"cvc2" | b"securitycode" => Some(Kind::Card),
        b"iban" | b"bankaccount" | b"accountnumber" | b"bankaccountnumber" => Some(Kind::Iban),
        b"ip" | b"ipaddress" | b"clientip" | b"remoteaddr" => Some(Kind::Ip),
        // credentials
        b"password" | b"passwd" | b"pwd" | b"passcode" | b"secret" | b"clientsecret" | b"token" | b"accesstoken"
        | b"idtoken" | b"refreshtoken" | b"authtoken" | b"auth" | b"authorization" | b"apikey" | b"apisecret"
        | b"accesskey" | b"secretkey" | b"privatekey" | b"jwt" | b"bearer" | b"credential" | b"credentials"
        | b"otp" | b"signature" | b"xamzsignature" | b"xamzcredential" | b"xamzsecuritytoken" => Some(Kind::Secret),
        // ad click ids and e-mail tracking ids: they identify one person's click or inbox
        b"gclid" | b"gbraid" | b"wbraid" | b"dclid" | b"fbclid" | b"msclkid" | b"ttclid" | b"twclid" | b"lifatid"
        | b"yclid" | b"mceid" | b"igshid" | b"hsenc" | b"hsmi" | b"mkttok" | b"kx" | b"scid" | b"irclickid"
        | b"epik" => Some(Kind::Secret),
        // personal data with no detectable shape
        b"firstname" | b"lastname" | b"fullname" | b"surname" | b"givenname" | b"familyname" | b"middlename"
        | b"maidenname" | b"address" | b"streetaddress" | b"street" | b"address1" | b"address2" | b"addressline1"
        | b"addressline2" | b"dob" | b"dateofbirth" | b"birthdate" | b"birthday" | b"passportnumber" | b"taxid"
        | b"nationalid" | b"driverslicense" | b"driverlicense" => Some(Kind::Redacted),
        _ => None,
    };
    if exact.is_some() {
        return exact;
    }
    if place == Place::Query {
        // In a URL these are credentials or session handles (OAuth `code`, `key=` API keys).
        let q = match c {
            b"key" | b"code" | b"sid" | b"session" | b"sessionid" | b"sessiontoken" | b"pass" | b"pin" | b"sig"
            | b"mail" | b"mobile" | b"cc" | b"phpsessid" | b"jsessionid" | b"aspsessionid" => Some(Kind::Secret),
            _ => None,
        };
        if let Some(k) = q {
            return Some(match c {
                b"mail" => Kind::Email,
                b"mobile" => Kind::Phone,
                b"cc" => Kind::Card,
                _ => k,
            });
        }
    }
    const SUFFIXES: [(&[u8], Kind); 16] = [
        (b"email", Kind::Email),
        (b"emailaddress", Kind::Email),
        (b"phone", Kind::Phone),
        (b"phonenumber", Kind::Phone),
        (b"ssn", Kind::Ssn),
        (b"cardnumber", Kind::Card),
        (b"iban", Kind::Iban),
        (b"token", Kind::Secret),
        (b"secret", Kind::Secret),
        (b"password", Kind::Secret),
        (b"passwd", Kind::Secret),
        (b"apikey", Kind::Secret),
        (b"accesskey", Kind::Secret),
        (b"secretkey", Kind::Secret),
        (b"privatekey", Kind::Secret),
        (b"signature", Kind::Secret),
    ];
    for (suffix, kind) in SUFFIXES {
        if c.len() > suffix.len() && c.ends_with(suffix) {
            return Some(kind);
        }
    }
    if place == Place::Query && c.len() > 9 && c.ends_with(b"sessionid") {
        return Some(Kind::Secret);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for n in [
            "token",
            "access_token",
            "accessToken",
            "id_token",
            "X-Amz-Security-Token",
            "password",
            "new_password",
            "client_secret",
            "api_key",
            "apiKey",
            "fbclid",
            "gclid",
        ] {
            assert_eq!(sensitive(n, Place::Json), Some(Kind::Secret), "{n}");
        }
        for n in ["email", "e-mail", "E_Mail", "userEmail", "work_email"] {
            assert_eq!(sensitive(n, Place::Json), Some(Kind::Email), "{n}");
        }
        assert_eq!(sensitive("phone_number", Place::Json), Some(Kind::Phone));
        assert_eq!(sensitive("card_number", Place::Json), Some(Kind::Card));
        assert_eq!(sensitive("iban", Place::Json), Some(Kind::Iban));
        assert_eq!(sensitive("ssn", Place::Json), Some(Kind::Ssn));
        assert_eq!(sensitive("firstName", Place::Json), Some(Kind::Redacted));
        for n in ["key", "code", "session", "sessionid", "sid", "pin", "mail"] {
            assert!(sensitive(n, Place::Query).is_some(), "{n}");
            assert!(sensitive(n, Place::Json).is_none(), "{n}");
        }
        for n in [
            "page",
            "utm_source",
            "name",
            "email_verified",
            "product_id",
            "sku",
            "price",
            "q",
            "sort_key",
            "session_id",
            "",
            "tokens_used_count_for_this_request_which_is_very_long_indeed",
        ] {
            assert_eq!(sensitive(n, Place::Json), None, "{n}");
        }
        assert_eq!(
            sensitive(
                "a_very_long_parameter_name_that_still_ends_with_access_token",
                Place::Query
            ),
            Some(Kind::Secret)
        );
    }
}
