//! Valid and invalid examples, most of them from the descriptions AWS AppSync publishes with each scalar.

use serde_json::{json, Value};

use crate::{check_scalar, AwsScalar};

fn assert_valid(scalar: AwsScalar, values: &[Value]) {
    for value in values {
        assert_eq!(check_scalar(scalar, value), Ok(()), "{} should accept {value}", scalar.name());
    }
}

fn assert_invalid(scalar: AwsScalar, values: &[Value]) {
    for value in values {
        assert_eq!(check_scalar(scalar, value), Err(scalar.code()), "{} should reject {value}", scalar.name());
    }
}

fn strings(values: &[&str]) -> Vec<Value> {
    values.iter().map(|v| json!(v)).collect()
}

#[test]
fn names_and_codes() {
    let pairs: Vec<(&str, &str)> = AwsScalar::ALL.iter().map(|s| (s.name(), s.code())).collect();
    assert_eq!(
        pairs,
        [
            ("AWSDate", "INVALID_DATE"),
            ("AWSTime", "INVALID_TIME"),
            ("AWSDateTime", "INVALID_DATETIME"),
            ("AWSTimestamp", "INVALID_TIMESTAMP"),
            ("AWSEmail", "INVALID_EMAIL"),
            ("AWSJSON", "INVALID_JSON"),
            ("AWSURL", "INVALID_URL"),
            ("AWSPhone", "INVALID_PHONE"),
            ("AWSIPAddress", "INVALID_IP_ADDRESS"),
        ]
    );
    assert!(AwsScalar::ALL.iter().all(|s| AwsScalar::from_name(s.name()) == Some(*s)));
    assert_eq!(AwsScalar::from_name("AWSDecimal"), None);
}

#[test]
fn aws_date() {
    assert_valid(
        AwsScalar::Date,
        &strings(&[
            "1970-01-01",
            "1970-01-01Z",
            "1970-01-01-07:00",
            "1970-01-01+05:30",
            "-2017-05-01",
            "-9999-01-01",
            "2024-02-29",
            "1970-01-01+05:30:15",
        ]),
    );
    assert_invalid(
        AwsScalar::Date,
        &strings(&[
            "1970-1-1",
            "1970-13-01",
            "2023-02-29",
            "1970-01-32",
            "19700101",
            "70-01-01",
            "1970-01-01T00:00Z",
            "1970-01-01+5:30",
            "1970-01-01+05",
            "1970-01-01 ",
            "",
        ]),
    );
    assert_invalid(AwsScalar::Date, &[json!(19700101), Value::Null]);
}

#[test]
fn aws_time() {
    assert_valid(
        AwsScalar::Time,
        &strings(&[
            "12:00:00.2",
            "12:00:00.277",
            "12:00:00.123456789",
            "12:30",
            "12:30Z",
            "12:30:24-07:00",
            "12:30:24.500+05:30",
            "00:00:00",
            "23:59:59",
        ]),
    );
    assert_invalid(
        AwsScalar::Time,
        &strings(&[
            "12:00:00.1234567890",
            "24:00",
            "12:60",
            "12:30:60",
            "12:30:24.",
            "12:30.5",
            "1230",
            "12:30:24 Z",
            "12:30z",
            "noon",
        ]),
    );
}

#[test]
fn aws_date_time() {
    assert_valid(
        AwsScalar::DateTime,
        &strings(&[
            "1970-01-01T12:00:00.2Z",
            "1970-01-01T12:00:00.277Z",
            "1970-01-01T12:00:00.123456789Z",
            "-2017-01-01T00:00Z",
            "-9999-01-01T00:00Z",
            "1970-01-01T12:30:24-07:00",
            "2024-05-31T13:45:00+05:30:15",
        ]),
    );
    assert_invalid(
        AwsScalar::DateTime,
        &strings(&[
            "1970-01-01T12:00:00",
            "1970-01-01 12:00:00Z",
            "1970-01-01",
            "1970-01-01T25:00Z",
            "1970-02-30T00:00Z",
            "1970-01-01T12:00:00.Z",
        ]),
    );
}

#[test]
fn aws_timestamp() {
    assert_valid(
        AwsScalar::Timestamp,
        &[json!(0), json!(1_700_000_000), json!(-1), json!(i64::MAX), json!(1_000_000_000_000_i64)],
    );
    assert_invalid(AwsScalar::Timestamp, &[json!(1.5), json!("1700000000"), json!(u64::MAX), Value::Null, json!(true)]);
}

#[test]
fn aws_email() {
    assert_valid(
        AwsScalar::Email,
        &strings(&["username@example.com", "first.last+tag@mail.example.co.uk", "o'brien@example.ie", "x@a-b.io"]),
    );
    assert_invalid(
        AwsScalar::Email,
        &strings(&[
            "username",
            "user@",
            "@example.com",
            "user@localhost",
            "a b@example.com",
            "user@exa_mple.com",
            "user..x@example.com",
            ".user@example.com",
            "user@-example.com",
            "user@example..com",
            "a@b@example.com",
        ]),
    );
}

#[test]
fn aws_json() {
    assert_valid(
        AwsScalar::Json,
        &strings(&[r#"{"upvotes": 10}"#, "[1,2,3]", r#""AWSJSON example string""#, "1", "true", "null"]),
    );
    assert_invalid(AwsScalar::Json, &strings(&["{a: 1}", "{'a': 1}", "Unquoted string", ""]));
    assert_invalid(AwsScalar::Json, &[json!({"upvotes": 10}), json!(1)]);
}

#[test]
fn aws_url() {
    assert_valid(
        AwsScalar::Url,
        &strings(&[
            "https://www.amazon.com/",
            "http://localhost/",
            "https://www.amazon.com/dp/B000NZW3KC/",
            "mailto:example@example.com",
            "http://[2001:db8::1]:8080/x?q=1#f",
            "ftp://user:pw@host:21/file",
            "https://example.com",
            "https://example.com/a?next=https://x.io//y",
            "urn:isbn:0451450523",
        ]),
    );
    assert_invalid(
        AwsScalar::Url,
        &strings(&[
            "amazon.com",
            "www.amazon.com",
            "https://www.amazon.com//dp",
            "https://",
            "http://exa mple.com",
            "1http://x.com",
            "https://host:99999/",
            "http://[::1/",
            "mailto:",
            "/relative/path",
        ]),
    );
}

#[test]
fn aws_phone() {
    assert_valid(
        AwsScalar::Phone,
        &strings(&[
            "+1 (800) 123-4567",
            "206-555-0100",
            "(206) 555-0100",
            "2065550100",
            "1 800 123 4567",
            "+44 20 7946 0958",
            "+61 2 9876 5432",
            "+4915112345678",
        ]),
    );
    assert_invalid(
        AwsScalar::Phone,
        &strings(&[
            "555-0100",
            "phone",
            "+1 800 CALL NOW",
            "206--555-0100",
            "206-555-0100-",
            "-206-555-0100",
            "(206 555-0100",
            "206) 555-0100",
            "+1234",
            "++1 206 555 0100",
            "12065550100123",
            "22065550100",
            "206.555.0100",
            "(2)(0)6 555 0100",
        ]),
    );
}

#[test]
fn aws_ip_address() {
    assert_valid(
        AwsScalar::IpAddress,
        &strings(&[
            "123.12.34.56",
            "1a2b:3c4b::1234:4567",
            "123.45.67.89/16",
            "::1",
            "2001:db8::/32",
            "0.0.0.0/0",
            "::ffff:192.0.2.1",
        ]),
    );
    assert_invalid(
        AwsScalar::IpAddress,
        &strings(&[
            "256.1.1.1",
            "1.2.3",
            "123.45.67.89/33",
            "2001:db8::/129",
            "[::1]",
            "1.2.3.4/",
            "1.2.3.4/+8",
            "localhost",
            "1.2.3.4 ",
            "fe80::1%eth0",
        ]),
    );
}
