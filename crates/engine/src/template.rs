//! Templates: playbook strings rendered against the topology with minijinja.
//!
//! Undefined names are errors (strict mode), so a typo in a playbook fails the
//! run before any host is touched instead of writing an empty value into a
//! config file. The `{{ }}` / `{% %}` syntax does not clash with the `${...}`
//! placeholders config files keep for their own runtime (`${server.local.ip}`),
//! which pass through untouched. Nothing is
//! auto-escaped: XML escaping is the patch engine's job, at the one place a
//! value enters a document.

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
#[error("template `{template}`: {message}")]
pub struct TemplateError {
    pub template: String,
    pub message: String,
}

pub struct Renderer {
    env: Environment<'static>,
}

impl Default for Renderer {
    fn default() -> Self {
        Self::new()
    }
}

impl Renderer {
    pub fn new() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        // `| xml`: a value for an XML fragment, by the patch engine's own escaper (the
        // redactor knows its forms). Unlike `| e` (HTML), it leaves `/` alone.
        env.add_filter("xml", |v: String| apim_xmlpatch::escape_markup(&v));
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .keep_trailing_newline(true)
                .build()
                .expect("default syntax is valid"),
        );
        Renderer { env }
    }

    /// Renders one template string. A result with a NUL byte is an error: no path,
    /// shell word or XML text can hold one, so every value that reaches a script or a
    /// config file can be quoted and escaped.
    pub fn render(&self, template: &str, ctx: &Value) -> Result<String, TemplateError> {
        let out = if !template.contains("{{") && !template.contains("{%") {
            template.to_string()
        } else {
            self.env
                .render_str(
                    template,
                    minijinja::Value::from(minijinja::value::Serde(ctx)),
                )
                .map_err(|e| TemplateError {
                    template: template.to_string(),
                    message: error_chain(&e),
                })?
        };
        refuse_nul(&out, template)?;
        Ok(out)
    }

    /// Evaluates a `when` expression to a boolean (Jinja truthiness).
    pub fn truthy(&self, expr: &str, ctx: &Value) -> Result<bool, TemplateError> {
        Ok(self.eval(expr, expr, ctx)?.is_true())
    }

    /// Renders every string inside a TOML value, recursively. A string that is
    /// exactly one `{{ expression }}` keeps the expression's type (a port stays
    /// a number, a list stays a list); any other string renders to a string.
    pub fn render_toml(&self, v: &toml::Value, ctx: &Value) -> Result<toml::Value, TemplateError> {
        Ok(match v {
            toml::Value::String(s) => match sole_expression(s) {
                Some(expr) => self.eval_typed(expr, s, ctx)?,
                None => toml::Value::String(self.render(s, ctx)?),
            },
            toml::Value::Array(items) => toml::Value::Array(
                items
                    .iter()
                    .map(|i| self.render_toml(i, ctx))
                    .collect::<Result<_, _>>()?,
            ),
            toml::Value::Table(t) => toml::Value::Table(self.render_table(t, ctx)?),
            other => other.clone(),
        })
    }

    pub fn render_table(&self, t: &toml::Table, ctx: &Value) -> Result<toml::Table, TemplateError> {
        t.iter()
            .map(|(k, v)| Ok((k.clone(), self.render_toml(v, ctx)?)))
            .collect()
    }
}

impl Renderer {
    /// Evaluates a `loop` expression (`{{ }}` optional) to a list of values.
    pub fn list(&self, expr: &str, ctx: &Value) -> Result<Vec<Value>, TemplateError> {
        let value = self.eval(sole_expression(expr).unwrap_or(expr), expr, ctx)?;
        match to_json(&value, expr)? {
            Value::Array(items) => Ok(items),
            other => Err(error(expr, format!("a loop needs a list, got {other}"))),
        }
    }

    fn eval_typed(
        &self,
        expr: &str,
        template: &str,
        ctx: &Value,
    ) -> Result<toml::Value, TemplateError> {
        let value = self.eval(expr, template, ctx)?;
        if value.is_none() || value.is_undefined() {
            return Err(error(template, format!("`{}` has no value", expr.trim())));
        }
        let value = json_to_toml(to_json(&value, template)?)
            .ok_or_else(|| error(template, format!("`{}` has no TOML form", expr.trim())))?;
        refuse_nul_in(&value, template)?;
        Ok(value)
    }

    /// Compiles and evaluates one expression; errors name `template`.
    fn eval(
        &self,
        expr: &str,
        template: &str,
        ctx: &Value,
    ) -> Result<minijinja::Value, TemplateError> {
        let compiled = self
            .env
            .compile_expression(expr)
            .map_err(|e| error(template, error_chain(&e)))?;
        compiled
            .eval(minijinja::Value::from(minijinja::value::Serde(ctx)))
            .map_err(|e| error(template, error_chain(&e)))
    }
}

fn error(template: &str, message: String) -> TemplateError {
    TemplateError {
        template: template.to_string(),
        message,
    }
}

fn refuse_nul(text: &str, template: &str) -> Result<(), TemplateError> {
    if text.contains('\0') {
        return Err(error(
            template,
            "the value holds a NUL byte, which no path, shell word or XML text can".into(),
        ));
    }
    Ok(())
}

fn refuse_nul_in(value: &toml::Value, template: &str) -> Result<(), TemplateError> {
    match value {
        toml::Value::String(s) => refuse_nul(s, template),
        toml::Value::Array(items) => items.iter().try_for_each(|i| refuse_nul_in(i, template)),
        toml::Value::Table(t) => t.values().try_for_each(|v| refuse_nul_in(v, template)),
        _ => Ok(()),
    }
}

fn to_json(value: &minijinja::Value, template: &str) -> Result<Value, TemplateError> {
    serde_json::to_value(value).map_err(|e| error(template, e.to_string()))
}

/// The expression inside a string of the form `{{ expr }}`, if that is all it is.
fn sole_expression(s: &str) -> Option<&str> {
    let inner = s.trim().strip_prefix("{{")?.strip_suffix("}}")?;
    (!inner.contains("{{") && !inner.contains("}}")).then_some(inner)
}

fn json_to_toml(v: Value) -> Option<toml::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => toml::Value::Boolean(b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        Value::String(s) => toml::Value::String(s),
        Value::Array(a) => {
            toml::Value::Array(a.into_iter().map(json_to_toml).collect::<Option<_>>()?)
        }
        Value::Object(o) => toml::Value::Table(
            o.into_iter()
                .map(|(k, v)| Some((k, json_to_toml(v)?)))
                .collect::<Option<_>>()?,
        ),
    })
}

fn error_chain(e: &minijinja::Error) -> String {
    let mut msg = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn runtime_placeholders_pass_through() {
        let r = Renderer::new();
        let out = r
            .render(
                "https://${server.local.ip}:{{ node.port }}/x",
                &json!({"node": {"port": 9444}}),
            )
            .unwrap();
        assert_eq!(out, "https://${server.local.ip}:9444/x");
    }

    #[test]
    fn the_xml_filter_is_the_patch_engines_markup_escaper() {
        let r = Renderer::new();
        let v = "p'w\"d&<>\r/";
        let out = r.render("{{ v | xml }}", &json!({ "v": v })).unwrap();
        assert_eq!(out, apim_xmlpatch::escape_markup(v));
    }

    #[test]
    fn the_xml_filter_escapes_markup_but_not_slashes() {
        let r = Renderer::new();
        let out = r
            .render(
                "{{ v | xml }}",
                &json!({"v": "jdbc:mysql://h/db?a=1&b='2'<>\""}),
            )
            .unwrap();
        assert_eq!(
            out,
            "jdbc:mysql://h/db?a=1&amp;b=&apos;2&apos;&lt;&gt;&quot;"
        );
    }

    #[test]
    fn a_nul_byte_in_a_value_is_an_error_wherever_it_lands() {
        // should: a secret or name with a NUL never reaches a script, where bash would
        // drop the byte and act on another value.
        let r = Renderer::new();
        let ctx = json!({"v": "a\u{0}b", "list": ["ok", "x\u{0}"]});
        for template in ["{{ v }}", "/opt/{{ v }}/x", "{{ v | xml }}"] {
            let err = r.render(template, &ctx).unwrap_err().to_string();
            assert!(err.contains("NUL"), "{template}: {err}");
        }
        let mut t = toml::Table::new();
        t.insert("names".into(), "{{ list }}".into());
        assert!(r.render_table(&t, &ctx).is_err());
        assert!(r.render("no\u{0}template", &ctx).is_err());
    }

    #[test]
    fn undefined_names_are_errors() {
        let r = Renderer::new();
        let err = r
            .render("{{ node.nope }}", &json!({"node": {}}))
            .unwrap_err();
        assert!(err.to_string().contains("undefined"), "{err}");
    }

    #[test]
    fn values_are_not_escaped_here() {
        let r = Renderer::new();
        let out = r.render("{{ v }}", &json!({"v": "a&b<c"})).unwrap();
        assert_eq!(out, "a&b<c");
    }

    #[test]
    fn a_sole_expression_keeps_its_type() {
        let r = Renderer::new();
        let ctx = json!({"db": {"port": 3306, "hosts": ["a", "b"]}});
        let mut t = toml::Table::new();
        t.insert("port".into(), "{{ db.port }}".into());
        t.insert("hosts".into(), "{{ db.hosts }}".into());
        t.insert("url".into(), "x:{{ db.port }}".into());
        let out = r.render_table(&t, &ctx).unwrap();
        assert_eq!(out["port"], toml::Value::Integer(3306));
        assert_eq!(
            out["hosts"],
            toml::Value::Array(vec!["a".into(), "b".into()])
        );
        assert_eq!(out["url"], toml::Value::String("x:3306".into()));
    }

    #[test]
    fn when_expressions_are_booleans() {
        let r = Renderer::new();
        let ctx = json!({"node": {"role": "web"}, "options": {"multi_tenancy": false}});
        assert!(r.truthy("node.role == 'web'", &ctx).unwrap());
        assert!(!r.truthy("options.multi_tenancy", &ctx).unwrap());
    }
}
