//! AppSync's `AWS…` scalars and the values each accepts, following the AWS AppSync developer guide ("Scalar types
//! in GraphQL") and the descriptions AppSync publishes with each scalar.

use std::net::{Ipv4Addr, Ipv6Addr};

use serde_json::Value;

/// One of the scalars AppSync defines on top of GraphQL's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AwsScalar {
    /// `AWSDate`: `YYYY-MM-DD` (or `-YYYY-MM-DD`), optionally followed by `Z` or `±hh:mm[:ss]`.
    Date,
    /// `AWSTime`: `hh:mm[:ss[.fraction]]` with 1 to 9 fraction digits, optionally followed by a time zone offset.
    Time,
    /// `AWSDateTime`: an `AWSDate` and an `AWSTime` joined by `T`; the time zone offset is required.
    DateTime,
    /// `AWSTimestamp`: an integer number of seconds before or after 1970-01-01T00:00Z.
    Timestamp,
    /// `AWSEmail`: `local-part@domain` (RFC 822), e.g. `username@example.com`.
    Email,
    /// `AWSJSON`: a string holding valid JSON (RFC 8259), e.g. `"{\"upvotes\": 10}"`.
    Json,
    /// `AWSURL`: a URL with a scheme (`https://…`, `mailto:…`) and no `//` in its path.
    Url,
    /// `AWSPhone`: a phone number whose digit groups may be separated by spaces or hyphens, with an optional `+`
    /// and country code (numbers without one are read as North American).
    Phone,
    /// `AWSIPAddress`: a dotted IPv4 or unbracketed IPv6 address, optionally with a CIDR `/prefix`.
    IpAddress,
}

impl AwsScalar {
    /// Every AppSync scalar.
    pub const ALL: [AwsScalar; 9] = [
        AwsScalar::Date,
        AwsScalar::Time,
        AwsScalar::DateTime,
        AwsScalar::Timestamp,
        AwsScalar::Email,
        AwsScalar::Json,
        AwsScalar::Url,
        AwsScalar::Phone,
        AwsScalar::IpAddress,
    ];

    /// The scalar's GraphQL name, e.g. `AWSDateTime`.
    pub fn name(self) -> &'static str {
        match self {
            AwsScalar::Date => "AWSDate",
            AwsScalar::Time => "AWSTime",
            AwsScalar::DateTime => "AWSDateTime",
            AwsScalar::Timestamp => "AWSTimestamp",
            AwsScalar::Email => "AWSEmail",
            AwsScalar::Json => "AWSJSON",
            AwsScalar::Url => "AWSURL",
            AwsScalar::Phone => "AWSPhone",
            AwsScalar::IpAddress => "AWSIPAddress",
        }
    }

    /// The scalar called `name`.
    pub fn from_name(name: &str) -> Option<AwsScalar> {
        AwsScalar::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The field error code for a value the scalar rejects, e.g. `INVALID_EMAIL`.
    pub fn code(self) -> &'static str {
        match self {
            AwsScalar::Date => "INVALID_DATE",
            AwsScalar::Time => "INVALID_TIME",
            AwsScalar::DateTime => "INVALID_DATETIME",
            AwsScalar::Timestamp => "INVALID_TIMESTAMP",
            AwsScalar::Email => "INVALID_EMAIL",
            AwsScalar::Json => "INVALID_JSON",
            AwsScalar::Url => "INVALID_URL",
            AwsScalar::Phone => "INVALID_PHONE",
            AwsScalar::IpAddress => "INVALID_IP_ADDRESS",
        }
    }

    /// What a valid value looks like, for error messages: "an email address like name@example.com".
    pub fn expected(self) -> &'static str {
        match self {
            AwsScalar::Date => "a date like 2024-05-31",
            AwsScalar::Time => "a time like 13:45 or 13:45:30.250",
            AwsScalar::DateTime => "a date and time with a time zone like 2024-05-31T13:45:00Z",
            AwsScalar::Timestamp => "a whole number of seconds since 1970-01-01T00:00Z",
            AwsScalar::Email => "an email address like name@example.com",
            AwsScalar::Json => "a string of JSON like \"{\\\"a\\\": 1}\"",
            AwsScalar::Url => "a URL with a scheme like https://example.com/",
            AwsScalar::Phone => "a phone number like +1 206-555-0100",
            AwsScalar::IpAddress => "an IPv4 or IPv6 address like 192.0.2.1 or 2001:db8::1",
        }
    }
}

/// Checks `value` against `scalar`, returning the error code (e.g. `INVALID_EMAIL`) when AppSync would reject it.
pub fn check_scalar(scalar: AwsScalar, value: &Value) -> Result<(), &'static str> {
    let valid = match (scalar, value) {
        (AwsScalar::Timestamp, Value::Number(n)) => n.is_i64(),
        (AwsScalar::Date, Value::String(s)) => is_date(s),
        (AwsScalar::Time, Value::String(s)) => is_time(s),
        (AwsScalar::DateTime, Value::String(s)) => is_date_time(s),
        (AwsScalar::Email, Value::String(s)) => is_email(s),
        (AwsScalar::Json, Value::String(s)) => serde_json::from_str::<Value>(s).is_ok(),
        (AwsScalar::Url, Value::String(s)) => is_url(s),
        (AwsScalar::Phone, Value::String(s)) => is_phone(s),
        (AwsScalar::IpAddress, Value::String(s)) => is_ip_address(s),
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(scalar.code())
    }
}

/// Whether `s` is an `AWSDate`: `[-]YYYY-MM-DD` naming a real calendar day, with an optional time zone offset.
fn is_date(s: &str) -> bool {
    date(s).is_some_and(|rest| rest.is_empty() || is_offset(rest))
}

/// Whether `s` is an `AWSTime`: `hh:mm[:ss[.fraction]]` with an optional time zone offset.
fn is_time(s: &str) -> bool {
    time(s).is_some_and(|rest| rest.is_empty() || is_offset(rest))
}

/// Whether `s` is an `AWSDateTime`: a date, `T`, a time and a required time zone offset.
fn is_date_time(s: &str) -> bool {
    let Some(rest) = date(s).and_then(|rest| rest.strip_prefix('T')) else { return false };
    time(rest).is_some_and(is_offset)
}

/// Reads `[-]YYYY-MM-DD` from the start of `s` and returns what follows; the day must exist in that month.
fn date(s: &str) -> Option<&str> {
    let (sign, s) = match s.strip_prefix('-') {
        Some(rest) => (-1, rest),
        None => (1, s),
    };
    let (year, s) = digits(s, 4)?;
    let (month, s) = digits(s.strip_prefix('-')?, 2)?;
    let (day, s) = digits(s.strip_prefix('-')?, 2)?;
    let month = time::Month::try_from(u8::try_from(month).ok()?).ok()?;
    let year = sign * i32::try_from(year).ok()?;
    time::Date::from_calendar_date(year, month, u8::try_from(day).ok()?).ok()?;
    Some(s)
}

/// Reads `hh:mm[:ss[.fraction]]` from the start of `s` and returns what follows.
fn time(s: &str) -> Option<&str> {
    let (hour, s) = digits(s, 2)?;
    let (minute, mut s) = digits(s.strip_prefix(':')?, 2)?;
    if hour > 23 || minute > 59 {
        return None;
    }
    if let Some(after_colon) = s.strip_prefix(':') {
        let (second, rest) = digits(after_colon, 2)?;
        if second > 59 {
            return None;
        }
        s = rest;
        if let Some(fraction) = s.strip_prefix('.') {
            let count = fraction.bytes().take_while(u8::is_ascii_digit).count();
            if !(1..=9).contains(&count) {
                return None;
            }
            s = &fraction[count..];
        }
    }
    Some(s)
}

/// Whether `s` is exactly a time zone offset: `Z`, `±hh:mm` or `±hh:mm:ss`.
fn is_offset(s: &str) -> bool {
    if s == "Z" {
        return true;
    }
    let Some(s) = s.strip_prefix(['+', '-']) else { return false };
    let Some((hour, s)) = digits(s, 2) else { return false };
    let Some((minute, s)) = s.strip_prefix(':').and_then(|s| digits(s, 2)) else { return false };
    let second_ok = match s.strip_prefix(':') {
        Some(s) => digits(s, 2).is_some_and(|(second, rest)| second <= 59 && rest.is_empty()),
        None => s.is_empty(),
    };
    hour <= 23 && minute <= 59 && second_ok
}

/// Reads exactly `n` ASCII digits from the start of `s`, returning their value and what follows.
fn digits(s: &str, n: usize) -> Option<(u32, &str)> {
    let head = s.get(..n)?;
    if !head.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((head.parse().ok()?, &s[n..]))
}

/// Whether `s` is an email address: a dot-atom local part (RFC 822's unquoted form), `@`, and a domain of at least
/// two dot-separated labels of letters, digits and inner hyphens.
fn is_email(s: &str) -> bool {
    const LOCAL_SPECIALS: &str = "!#$%&'*+/=?^_`{|}~-.";
    let Some((local, domain)) = s.rsplit_once('@') else { return false };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.chars().all(|c| c.is_ascii_alphanumeric() || LOCAL_SPECIALS.contains(c))
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    local_ok && s.len() <= 254 && domain.contains('.') && is_domain(domain)
}

/// Whether `s` is a DNS name: labels of 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen.
fn is_domain(s: &str) -> bool {
    s.split('.').all(|label| {
        (1..=63).contains(&label.len())
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && !label.starts_with('-')
            && !label.ends_with('-')
    })
}

/// Whether `s` is a URL: a scheme, `:`, and either `//authority[path]` or an opaque part (`mailto:a@b.c`); no
/// whitespace, and no `//` inside the path.
fn is_url(s: &str) -> bool {
    let Some((scheme, rest)) = s.split_once(':') else { return false };
    let scheme_ok = scheme.starts_with(|c: char| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || rest.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return false;
    }
    let (authority, path) = match rest.strip_prefix("//") {
        Some(hier) => {
            let end = hier.find(['/', '?', '#']).unwrap_or(hier.len());
            (Some(&hier[..end]), &hier[end..])
        }
        None => (None, rest),
    };
    let path = &path[..path.find(['?', '#']).unwrap_or(path.len())];
    authority.is_none_or(is_authority) && !path.contains("//")
}

/// Whether `s` is a URL authority: `[userinfo@]host[:port]` with a non-empty host, which may be a bracketed IPv6
/// address.
fn is_authority(s: &str) -> bool {
    let host_port = s.rsplit_once('@').map_or(s, |(_, host_port)| host_port);
    let (host_ok, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let Some((ip, after)) = bracketed.split_once(']') else { return false };
        let port = match after.strip_prefix(':') {
            Some(port) => Some(port),
            None if after.is_empty() => None,
            None => return false,
        };
        (ip.parse::<Ipv6Addr>().is_ok(), port)
    } else {
        match host_port.rsplit_once(':') {
            Some((host, port)) => (is_host_name(host), Some(port)),
            None => (is_host_name(host_port), None),
        }
    };
    host_ok && port.is_none_or(|p| p.is_empty() || (p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()))
}

/// Whether `s` is a non-empty host name or IPv4 address of URL "reg-name" characters.
fn is_host_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._~%!$&'()*+,;=".contains(c))
}

/// Whether `s` is a phone number: digit groups separated by single spaces or hyphens, at most one parenthesised
/// group (`(206) 555-0100`), and an optional leading `+`. With `+`, 7 to 15 digits (E.164); without, a North
/// American number: 10 digits, or 11 starting with the country code 1.
fn is_phone(s: &str) -> bool {
    let (international, body) = match s.strip_prefix('+') {
        Some(body) => (true, body),
        None => (false, s),
    };
    let digits: String = body.chars().filter(char::is_ascii_digit).collect();
    let count_ok = if international {
        (7..=15).contains(&digits.len())
    } else {
        digits.len() == 10 || (digits.len() == 11 && digits.starts_with('1'))
    };
    count_ok && phone_layout_ok(body)
}

/// Whether the characters of a phone number (after any `+`) are laid out as digit groups.
fn phone_layout_ok(body: &str) -> bool {
    let mut open_seen = false;
    let mut in_parens = false;
    let mut previous: Option<char> = None;
    for c in body.chars() {
        let ok = match c {
            '0'..='9' => true,
            ' ' | '-' => previous.is_some_and(|p| p.is_ascii_digit() || p == ')') && !in_parens,
            '(' => !open_seen && previous.is_none_or(|p| p == ' ' || p == '-'),
            ')' => in_parens && previous.is_some_and(|p| p.is_ascii_digit()),
            _ => false,
        };
        if !ok {
            return false;
        }
        open_seen |= c == '(';
        in_parens = match c {
            '(' => true,
            ')' => false,
            _ => in_parens,
        };
        previous = Some(c);
    }
    !in_parens && previous.is_some_and(|p| p.is_ascii_digit())
}

/// Whether `s` is an IPv4 or IPv6 address with an optional CIDR prefix length.
fn is_ip_address(s: &str) -> bool {
    let (address, prefix) = match s.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (s, None),
    };
    let max_prefix = if address.parse::<Ipv4Addr>().is_ok() {
        32
    } else if address.parse::<Ipv6Addr>().is_ok() {
        128
    } else {
        return false;
    };
    prefix.is_none_or(|p| {
        (1..=3).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u8>().is_ok_and(|n| n <= max_prefix)
    })
}
