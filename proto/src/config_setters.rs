//! The one way the producer's, consumer's, client's and broker's config builders write their
//! plain setters, so that each setter is a line naming its field and its doc comment.

/// Builder setters that store their argument in one field of the builder's `config`.
///
/// Each entry carries the setter's own doc comment, which points at the field it sets (whose
/// doc names the KPL/KCL key it mirrors and the default), then one of:
/// - `name: Type;` stores into `config.name`, taking an argument named `value`;
/// - `name(arg: Type);` stores into `config.name`, taking an argument named `arg`;
/// - `name(arg: Type) => path.to.field;` stores into `config.path.to.field`.
///
/// Use it inside `impl Builder { … }` where the builder has a field `config`.
#[macro_export]
#[doc(hidden)]
macro_rules! config_setters {
    () => {};
    ($(#[$doc:meta])* $name:ident: $ty:ty; $($rest:tt)*) => {
        $crate::config_setters! { $(#[$doc])* $name(value: $ty) => $name; $($rest)* }
    };
    ($(#[$doc:meta])* $name:ident($arg:ident: $ty:ty); $($rest:tt)*) => {
        $crate::config_setters! { $(#[$doc])* $name($arg: $ty) => $name; $($rest)* }
    };
    ($(#[$doc:meta])* $name:ident($arg:ident: $ty:ty) => $($field:ident).+; $($rest:tt)*) => {
        $(#[$doc])*
        pub fn $name(mut self, $arg: $ty) -> Self {
            self.config.$($field).+ = $arg;
            self
        }
        $crate::config_setters! { $($rest)* }
    };
}
