//! SDK errors as one line, and what became of aborting a failed upload.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::http::Response as HttpResponse;
use aws_smithy_types::error::display::DisplayErrorContext;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

/// An SDK error as one line: the service's error code and message when it answered, else the transport's story.
pub fn describe<E>(e: &SdkError<E, HttpResponse>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let text = match e {
        SdkError::ServiceError(s) => {
            let err = s.err();
            match (err.code(), err.message()) {
                (Some(c), Some(m)) => format!("{c}: {m}"),
                (Some(c), None) => c.to_string(),
                // The service answered something the SDK could not read (an HTML error page, a missing API).
                _ => format!(
                    "HTTP {} with an answer that is not the service's API",
                    s.raw().status().as_u16()
                ),
            }
        }
        // No answer of the service's: say what went wrong underneath (a refused connection, a DNS failure), not
        // the SDK's whole debug story.
        SdkError::TimeoutError(_) => "the request timed out".to_string(),
        SdkError::DispatchFailure(_) => format!("no answer from the service: {}", root_cause(e)),
        SdkError::ResponseError(_) => {
            format!("the service's answer could not be read: {}", root_cause(e))
        }
        SdkError::ConstructionFailure(_) => {
            format!("the request could not be made: {}", root_cause(e))
        }
        _ => DisplayErrorContext(e).to_string(),
    };
    // One line, and not the SDK's whole debug dump of the response.
    let mut line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.len() > 300 {
        let cut = (0..=300)
            .rev()
            .find(|&i| line.is_char_boundary(i))
            .unwrap_or(0);
        line.truncate(cut);
        line.push_str(" ...");
    }
    line
}

/// The innermost cause of an error, which names the real trouble ("Connection refused (os error 111)").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = e;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// The error of an upload that failed, with what became of aborting it.
pub fn after_abort(e: anyhow::Error, abort: anyhow::Result<()>) -> anyhow::Error {
    match abort {
        Ok(()) => e.context("the upload was aborted; nothing was stored"),
        Err(a) => e.context(format!(
            "aborting the upload failed too ({a:#}); `zstream-ship gc` removes what is left"
        )),
    }
}

/// The HTTP status of the answer behind an SDK error, if the service answered.
pub fn status<E>(e: &SdkError<E, HttpResponse>) -> Option<u16> {
    e.raw_response().map(|r| r.status().as_u16())
}

/// `map_err` for SDK calls: "what: service says".
pub fn err<E>(
    what: impl std::fmt::Display,
) -> impl FnOnce(SdkError<E, HttpResponse>) -> anyhow::Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    move |e| anyhow::anyhow!("{what}: {}", describe(&e))
}

#[cfg(test)]
mod tests {
    use aws_smithy_runtime_api::client::result::{ConnectorError, SdkError};

    /// An operation error as the SDK's generated ones are, for the test.
    #[derive(Debug)]
    struct HeadObjectError;
    impl std::fmt::Display for HeadObjectError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("HeadObjectError")
        }
    }
    impl std::error::Error for HeadObjectError {}
    impl aws_smithy_types::error::metadata::ProvideErrorMetadata for HeadObjectError {
        fn meta(&self) -> &aws_smithy_types::error::metadata::ErrorMetadata {
            unimplemented!("not reached for a dispatch failure")
        }
    }

    #[test]
    fn transport_errors_are_one_line_with_their_cause() {
        let io = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        let e: SdkError<HeadObjectError, super::HttpResponse> =
            SdkError::dispatch_failure(ConnectorError::io(Box::new(io)));
        let line = super::describe(&e);
        assert_eq!(
            line,
            "no answer from the service: Connection refused (os error 111)"
        );
    }
}
