//! How kubectl prints the errors of a command that acts on several objects
//! (`apply`, `create`, `replace`, `delete` of a stream or of several
//! names). Each of those goes on past an object that fails and returns
//! the errors at the end: one error alone, or several as an aggregate
//! (`utilerrors.NewAggregate`), which `cmdutil.CheckErr` prints differently
//! (staging/src/k8s.io/kubectl/pkg/cmd/util/helpers.go, `checkErr`):
//! - one error: an API status error as `Error from server (Reason):
//!   message`; an `Invalid` one as `The Kind "name" is invalid: cause`;
//!   any other error with `error: ` before it;
//! - several: one line each (`MultipleErrors`), each in its standard form
//!   (`messageForError`): an API status error as above, `Invalid` ones
//!   included (`Error from server (Invalid): Kind.group "name" is invalid:
//!   cause`), any other error as its bare text, without `error: `.
//!
//! The fake keeps each error as kubectl prints it alone; this turns the
//! list into kubectl's text for the whole command.

use crate::resources;

/// kubectl's stderr for `errors`, each given as it prints alone.
pub fn printed(errors: &[String]) -> String {
    match errors {
        [one] => one.clone(),
        many => many
            .iter()
            .map(|e| in_aggregate(e))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// One error as `MultipleErrors` prints it among others.
fn in_aggregate(alone: &str) -> String {
    if let Some(invalid) = invalid_in_aggregate(alone) {
        return invalid;
    }
    match alone.strip_prefix("error: ") {
        Some(bare) => bare.to_owned(),
        None => alone.to_owned(),
    }
}

/// `The Deployment "bot" is invalid: X` (checkErr's form, from the status
/// details' kind) as `Error from server (Invalid): Deployment.apps "bot" is
/// invalid: X` (the status message, whose kind is qualified by its group).
fn invalid_in_aggregate(alone: &str) -> Option<String> {
    let rest = alone.strip_prefix("The ")?;
    let (kind, tail) = rest.split_once(' ')?;
    if !tail.contains(" is invalid") {
        return None;
    }
    let resource = resources::by_kind(kind)?;
    let qualified = if resource.group.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}.{}", resource.group)
    };
    Some(format!("Error from server (Invalid): {qualified} {tail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_error_as_it_is_several_in_their_standard_form() {
        let forbidden = "Error from server (Forbidden): configmaps \"c\" is forbidden: User \"u\" cannot patch resource \"configmaps\" in API group \"\" in the namespace \"t\"";
        let conflict =
            "error: Apply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.k";
        let invalid = "The Deployment \"bot\" is invalid: spec.selector: field is immutable";
        assert_eq!(printed(&[conflict.to_owned()]), conflict);
        assert_eq!(printed(&[invalid.to_owned()]), invalid);
        assert_eq!(
            printed(&[
                forbidden.to_owned(),
                conflict.to_owned(),
                invalid.to_owned()
            ]),
            format!(
                "{forbidden}\nApply failed with 1 conflict: conflict with \"kubectl-edit\" using v1: .data.k\n\
                 Error from server (Invalid): Deployment.apps \"bot\" is invalid: spec.selector: field is immutable"
            )
        );
        let core = "The ConfigMap \"c\" is invalid: metadata.labels: Invalid value: \"x\"";
        assert_eq!(
            in_aggregate(core),
            "Error from server (Invalid): ConfigMap \"c\" is invalid: metadata.labels: Invalid value: \"x\""
        );
    }
}
