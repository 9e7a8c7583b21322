//! MLServer's content types: how to read a request's data, and how to label outputs.
//!
//! The host fills in the content types in force before the runtime sees a request: the
//! request's own, else model-settings.json's `parameters.content_type`; each input's own, else
//! that of the input declared in model-settings.json. It decodes `base64` inputs to their bytes
//! and checks that `str` and `datetime` inputs are UTF-8; outputs labelled `base64` are encoded
//! by the host, and outputs without a label get `np` (or `str` for BYTES text). What is left to a
//! runtime is reading the data the way its content type says: [`InferenceRequest::table`] for
//! `pd`, [`Tensor::strings`] for `str`, [`Tensor::datetimes`] for `datetime`, and the typed views
//! ([`Tensor::values`], [`Tensor::to_f64_vec`]) for `np`.

use crate::element::read_as_f64;
use crate::{Datatype, Error, InferenceRequest, Parameter, ParameterValue, Tensor, find_parameter};

/// The name of the parameter that holds a content type: `"content_type"`.
pub const CONTENT_TYPE: &str = "content_type";

fn content_type_of(parameters: &[Parameter]) -> Option<&str> {
    match find_parameter(parameters, CONTENT_TYPE)? {
        ParameterValue::String(content_type) => Some(content_type),
        _ => None,
    }
}

impl InferenceRequest {
    /// The request's content type (`np`, `pd`, `str`, ...), if it has one: its
    /// `parameters.content_type`, else the model's default from model-settings.json.
    ///
    /// ```
    /// # use mlhost_guest::{InferenceRequest, Parameter};
    /// # let request = InferenceRequest { id: None, inputs: vec![], outputs: vec![],
    /// #     parameters: vec![Parameter::string("content_type", "pd")] };
    /// // {"parameters": {"content_type": "pd"}, "inputs": [...]}
    /// if request.content_type() == Some("pd") {
    ///     let table = request.table()?;
    /// #   assert_eq!(table.rows, 0);
    /// }
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn content_type(&self) -> Option<&str> {
        content_type_of(&self.parameters)
    }

    /// The request as a table (content type `pd`): each input is a column, of as many rows as
    /// dimension 0 of the first input; every input must have that many rows (else
    /// [`Error::InvalidInput`]).
    ///
    /// ```
    /// # use mlhost_guest::{ColumnValues, InferenceRequest, Tensor};
    /// # let request = InferenceRequest { id: None, outputs: vec![], parameters: vec![],
    /// #     inputs: vec![Tensor::from_values("age", &[2], &[31i64, 45])?,
    /// #                  Tensor::from_bytes_elements("name", &[2], &["ann", "bob"])?] };
    /// // inputs "age" (INT64 [2]) and "name" (BYTES [2]), content type "pd"
    /// let table = request.table()?;
    /// assert_eq!(table.rows, 2);
    /// assert_eq!(table.column("age")?.values, ColumnValues::Numbers(vec![31.0, 45.0]));
    /// assert_eq!(table.column("name")?.values, ColumnValues::Strings(vec!["ann", "bob"]));
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn table(&self) -> Result<Table<'_>, Error> {
        let rows = self.inputs.first().map_or(0, Tensor::rows);
        let columns = self
            .inputs
            .iter()
            .map(|input| {
                if input.rows() != rows {
                    return Err(Error::invalid_input(format!(
                        "column '{}' has {} rows, the table has {rows}",
                        input.name,
                        input.rows()
                    )));
                }
                Column::of(input)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Table { rows, columns })
    }
}

impl Tensor {
    /// The tensor's content type (`np`, `str`, `base64`, `datetime`), if it has one: its own
    /// `parameters.content_type`, else that of the input declared in model-settings.json.
    ///
    /// ```
    /// # use mlhost_guest::Tensor;
    /// let text = Tensor::from_bytes_elements("text", &[1], &["hi"])?.with_content_type("str");
    /// assert_eq!(text.content_type(), Some("str"));
    /// assert_eq!(Tensor::from_values("x", &[1], &[1.0f32])?.content_type(), None);
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn content_type(&self) -> Option<&str> {
        content_type_of(&self.parameters)
    }

    /// Labels the tensor with a content type (`np`, `str`, `base64`, `datetime`), in place of
    /// any it had. An output labelled `base64` holds raw bytes, which the host encodes as base64
    /// for the client.
    ///
    /// ```
    /// # use mlhost_guest::Tensor;
    /// let png = Tensor::from_bytes_elements("image", &[1], &[b"\x89PNG..."])?
    ///     .with_content_type("base64");
    /// assert_eq!(png.content_type(), Some("base64"));
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn with_content_type(mut self, content_type: &str) -> Tensor {
        self.parameters
            .retain(|parameter| parameter.name != CONTENT_TYPE);
        self.with_parameter(Parameter::string(CONTENT_TYPE, content_type))
    }

    /// The elements of a BYTES tensor as ISO 8601 date-times (content type `datetime`; see
    /// [`DateTime::parse`] for the forms read). An element that is not one is an
    /// [`Error::InvalidInput`].
    ///
    /// ```
    /// # use mlhost_guest::Tensor;
    /// let texts = ["1970-01-02", "2024-02-29T12:00:00+01:00"];
    /// let at = Tensor::from_bytes_elements("at", &[2], &texts)?.with_content_type("datetime");
    /// let times = at.datetimes()?;
    /// assert_eq!(times[0].unix_seconds, 86_400);
    /// assert_eq!((times[1].unix_seconds, times[1].offset_minutes), (1_709_204_400, 60));
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn datetimes(&self) -> Result<Vec<DateTime>, Error> {
        self.strings()?
            .into_iter()
            .map(|text| {
                DateTime::parse(text).ok_or_else(|| {
                    Error::invalid_input(format!(
                        "input '{}': '{text}' is not an ISO 8601 date-time",
                        self.name
                    ))
                })
            })
            .collect()
    }
}

/// A request read as a table (MLServer's `pd` content type): see [`InferenceRequest::table`].
///
/// It borrows the request's data.
#[derive(Debug, Clone, PartialEq)]
pub struct Table<'a> {
    /// The number of rows: dimension 0 of every input.
    pub rows: usize,
    /// One column per input, in the request's order.
    pub columns: Vec<Column<'a>>,
}

impl<'a> Table<'a> {
    /// The column named `name`; [`Error::InvalidInput`] when the request has no such input.
    ///
    /// ```
    /// # use mlhost_guest::{ColumnValues, InferenceRequest, Tensor};
    /// # let request = InferenceRequest { id: None, outputs: vec![], parameters: vec![],
    /// #     inputs: vec![Tensor::from_values("paid", &[2], &[true, false])?] };
    /// let table = request.table()?;
    /// assert_eq!(table.column("paid")?.values, ColumnValues::Booleans(vec![true, false]));
    /// assert!(table.column("height").is_err());
    /// # Ok::<(), mlhost_guest::Error>(())
    /// ```
    pub fn column(&self, name: &str) -> Result<&Column<'a>, Error> {
        self.columns
            .iter()
            .find(|column| column.name == name)
            .ok_or_else(|| Error::invalid_input(format!("the table has no column '{name}'")))
    }
}

/// One column of a [`Table`]: one input, one value per row.
///
/// An input of shape `[rows, k]` makes a column of `rows × k` values, in row-major order
/// (each row's `k` values together).
#[derive(Debug, Clone, PartialEq)]
pub struct Column<'a> {
    /// The input's name.
    pub name: &'a str,
    /// The input's elements.
    pub values: ColumnValues<'a>,
}

/// The values of a column, by kind.
///
/// ```
/// # use mlhost_guest::{ColumnValues, InferenceRequest, Tensor};
/// # let request = InferenceRequest { id: None, outputs: vec![], parameters: vec![],
/// #     inputs: vec![Tensor::from_values("height", &[2], &[1.5f32, 1.8])?] };
/// for column in request.table()?.columns {
///     match column.values {
///         ColumnValues::Numbers(numbers) => assert_eq!(numbers.len(), 2),
///         ColumnValues::Booleans(_) | ColumnValues::Strings(_) | ColumnValues::Bytes(_) => {}
///     }
/// }
/// # Ok::<(), mlhost_guest::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnValues<'a> {
    /// Any numeric datatype, as `f64`.
    Numbers(Vec<f64>),
    /// BOOL.
    Booleans(Vec<bool>),
    /// BYTES holding UTF-8 text.
    Strings(Vec<&'a str>),
    /// BYTES that are not text.
    Bytes(Vec<&'a [u8]>),
}

impl<'a> Column<'a> {
    fn of(tensor: &'a Tensor) -> Result<Self, Error> {
        let values = match tensor.datatype {
            Datatype::Bool => ColumnValues::Booleans(tensor.data.iter().map(|&b| b != 0).collect()),
            Datatype::Bytes => match tensor.strings() {
                Ok(strings) => ColumnValues::Strings(strings),
                Err(_) => ColumnValues::Bytes(tensor.bytes_elements()?),
            },
            datatype => {
                let size = crate::element::element_size(datatype).unwrap_or(1);
                ColumnValues::Numbers(
                    tensor
                        .data
                        .chunks_exact(size)
                        .map(|bytes| read_as_f64(datatype, bytes))
                        .collect(),
                )
            }
        };
        Ok(Column {
            name: &tensor.name,
            values,
        })
    }
}

/// A date-time read from ISO 8601 text: the instant in UTC and the offset it was written in.
///
/// Read a `datetime` input with [`Tensor::datetimes`], or one text with [`DateTime::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub unix_seconds: i64,
    /// The fraction of a second, in nanoseconds (digits past the ninth are dropped).
    pub nanoseconds: u32,
    /// The offset from UTC the text gave, in minutes (0 for `Z` or none).
    pub offset_minutes: i32,
}

impl DateTime {
    /// Parses `YYYY-MM-DD`, optionally followed by `THH:MM[:SS[.fraction]]` (or a space instead
    /// of `T`) and `Z`, `±HH:MM`, `±HHMM` or `±HH`. A date-time without an offset is taken as
    /// UTC. Every field is ASCII digits (no signs or spaces); `None` for anything else.
    ///
    /// ```
    /// # use mlhost_guest::DateTime;
    /// let t = DateTime::parse("2024-02-29T12:30:15.25+02:00").unwrap();
    /// assert_eq!(t.unix_seconds, 1_709_202_615); // 10:30:15 UTC
    /// assert_eq!((t.nanoseconds, t.offset_minutes), (250_000_000, 120));
    /// assert_eq!(DateTime::parse("1970-01-01").map(|t| t.unix_seconds), Some(0));
    /// assert_eq!(DateTime::parse("2023-02-29"), None);
    /// ```
    pub fn parse(text: &str) -> Option<DateTime> {
        let bytes = text.as_bytes();
        let (year, month, day) = (
            digits(bytes, 0..4)?,
            digits(bytes, 5..7)?,
            digits(bytes, 8..10)?,
        );
        if bytes.get(4) != Some(&b'-') || bytes.get(7) != Some(&b'-') {
            return None;
        }
        if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
            return None;
        }
        let mut seconds = days_from_civil(year, month, day) * 86_400;
        let mut nanoseconds = 0u32;
        let mut offset_minutes = 0i32;
        let mut rest = &text[10..];
        if let Some(time) = rest.strip_prefix(['T', 't', ' ']) {
            let time_bytes = time.as_bytes();
            let (hour, minute) = (digits(time_bytes, 0..2)?, digits(time_bytes, 3..5)?);
            if time_bytes.get(2) != Some(&b':') || hour > 23 || minute > 59 {
                return None;
            }
            seconds += hour * 3600 + minute * 60;
            rest = &time[5..];
            if let Some(after) = rest.strip_prefix(':') {
                let second = digits(after.as_bytes(), 0..2)?;
                if second > 60 {
                    return None;
                }
                seconds += second;
                rest = &after[2..];
                if let Some(fraction) = rest.strip_prefix(['.', ',']) {
                    let count = fraction.bytes().take_while(u8::is_ascii_digit).count();
                    if count == 0 {
                        return None;
                    }
                    let kept = &fraction[..count.min(9)];
                    nanoseconds = kept.parse::<u32>().ok()? * 10u32.pow(9 - kept.len() as u32);
                    rest = &fraction[count..];
                }
            }
            match rest.as_bytes() {
                [] => {}
                [b'Z' | b'z'] => rest = "",
                [sign @ (b'+' | b'-'), offset @ ..] => {
                    // `HH`, `HHMM` or `HH:MM`.
                    let hours = digits(offset, 0..2)?;
                    let minutes = match offset.len() {
                        2 => 0,
                        4 => digits(offset, 2..4)?,
                        5 if offset[2] == b':' => digits(offset, 3..5)?,
                        _ => return None,
                    };
                    if hours > 23 || minutes > 59 {
                        return None;
                    }
                    offset_minutes = i32::try_from(hours * 60 + minutes).ok()?
                        * if *sign == b'-' { -1 } else { 1 };
                    seconds -= i64::from(offset_minutes) * 60;
                    rest = "";
                }
                _ => return None,
            }
        }
        rest.is_empty().then_some(DateTime {
            unix_seconds: seconds,
            nanoseconds,
            offset_minutes,
        })
    }
}

/// The number written in `bytes[range]`, which must be ASCII digits only (no sign, no space).
fn digits(bytes: &[u8], range: std::ops::Range<usize>) -> Option<i64> {
    let digits = bytes.get(range)?;
    digits
        .iter()
        .all(u8::is_ascii_digit)
        .then(|| digits.iter().fold(0, |n, d| n * 10 + i64::from(d - b'0')))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_iso_8601_date_times() {
        let at =
            |text| DateTime::parse(text).map(|t| (t.unix_seconds, t.nanoseconds, t.offset_minutes));
        assert_eq!(at("1970-01-01"), Some((0, 0, 0)));
        assert_eq!(at("2000-03-01T00:00:00Z"), Some((951_868_800, 0, 0)));
        assert_eq!(
            at("2024-02-29T12:30:15.25+02:00"),
            Some((1_709_202_615, 250_000_000, 120))
        );
        assert_eq!(at("2024-02-29 12:30"), Some((1_709_209_800, 0, 0)));
        assert_eq!(at("2023-02-29"), None);
        assert_eq!(at("2024-13-01"), None);
        assert_eq!(at("2024-01-01T25:00"), None);
        assert_eq!(at("yesterday"), None);
        assert_eq!(at("2024-01-01Tnoon"), None);
        assert_eq!(
            at("2024-01-01T00:00+0130"),
            Some((-5400 + 1_704_067_200, 0, 90))
        );
        assert_eq!(
            at("2024-01-01T00:00-01"),
            Some((3600 + 1_704_067_200, 0, -60))
        );
        // Every field is digits only: no signs or spaces that a number parser would take.
        assert_eq!(at("2024-01-01T12:30:+1"), None);
        assert_eq!(at("2024-01-01T12:30++1:00"), None);
        assert_eq!(at("2024-01-01T12:30+01:-5"), None);
        assert_eq!(at("2024-01-01T12:30+01:99"), None);
        assert_eq!(at("2024-01-01T12:30+24:00"), None);
        assert_eq!(at("2024-01-01T12:30+01:000"), None);
    }

    #[test]
    fn a_content_type_replaces_the_one_before() {
        let tensor = Tensor::from_bytes_elements("s", &[1], &["a"])
            .unwrap()
            .with_content_type("np")
            .with_content_type("str");
        assert_eq!(tensor.content_type(), Some("str"));
        assert_eq!(tensor.parameters.len(), 1);
    }

    #[test]
    fn reads_a_request_as_a_table() {
        let request = InferenceRequest {
            id: None,
            inputs: vec![
                Tensor::from_values("age", &[2], &[31i64, 45]).unwrap(),
                Tensor::from_bytes_elements("name", &[2], &["ann", "bob"]).unwrap(),
            ],
            outputs: vec![],
            parameters: vec![Parameter::string(CONTENT_TYPE, "pd")],
        };
        assert_eq!(request.content_type(), Some("pd"));
        let table = request.table().unwrap();
        assert_eq!(table.rows, 2);
        assert_eq!(
            table.column("age").unwrap().values,
            ColumnValues::Numbers(vec![31.0, 45.0])
        );
        assert_eq!(
            table.column("name").unwrap().values,
            ColumnValues::Strings(vec!["ann", "bob"])
        );
        assert!(table.column("height").is_err());
    }
}
