//! `keymint login`: with a token (checked with lookup-self), or with an auth method's
//! credentials (`-method=approle|jwt|kubernetes`, K=V as the vault CLI takes them). The token
//! is kept in `~/.keymint-token` (0600) unless `-no-store` or `-token-only`.

use clap::Args;
use serde_json::{Value, json};

use crate::auto_auth::{Method, SERVICE_ACCOUNT_TOKEN};
use crate::client::{Env, Exit, api_error};
use crate::commands::{Common, conn, url, write_private};
use crate::output::{self, Format};

#[derive(Args, Debug)]
#[command(
    after_help = "Examples:\n  keymint login s.XXXX\n  echo \"$TOKEN\" | keymint login -\n  keymint login -method=approle role_id=... secret_id=@/etc/keymint/secret-id\n  keymint login -method=jwt role=ci jwt=@/run/id-token\n  keymint login -method=kubernetes role=deploy   # the pod's service-account token\n  keymint login -method=approle -path=ci-approle -token-only role_id=... secret_id=-"
)]
pub struct LoginArgs {
    #[command(flatten)]
    pub common: Common,
    /// How to log in: with a token, or with an auth method's credentials.
    #[arg(long, value_enum, default_value_t = LoginMethod::Token)]
    pub method: LoginMethod,
    /// Where the auth method is mounted (default: the method's name).
    #[arg(long)]
    pub path: Option<String>,
    /// Do not keep the token in ~/.keymint-token.
    #[arg(long)]
    pub no_store: bool,
    /// Print only the token (implies -no-store).
    #[arg(long)]
    pub token_only: bool,
    /// The token (`-` reads it from standard input), or the method's K=V credentials
    /// (K=@file reads a file, K=- standard input).
    pub args: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LoginMethod {
    Token,
    Approle,
    Jwt,
    Kubernetes,
}

pub async fn login(env: &Env, args: LoginArgs) -> Result<(), Exit> {
    let method = match args.method {
        LoginMethod::Token => return login_with_token(env, args).await,
        LoginMethod::Approle => Method::Approle,
        LoginMethod::Jwt => Method::Jwt,
        LoginMethod::Kubernetes => Method::Kubernetes,
    };
    let mut data = output::request_data(&args.args, &mut std::io::stdin())?;
    if method == Method::Kubernetes && !data.contains_key("jwt") {
        let jwt = std::fs::read_to_string(SERVICE_ACCOUNT_TOKEN).map_err(|e| {
            Exit::local(format!("no jwt=... given, and reading {SERVICE_ACCOUNT_TOKEN}: {e}"))
        })?;
        data.insert("jwt".into(), json!(jwt.trim()));
    }
    let required = if method == Method::Approle { "role_id" } else { "jwt" };
    if data.get(required).and_then(Value::as_str).is_none_or(|v| v.trim().is_empty()) {
        return Err(Exit::local(format!(
            "Error authenticating: -method={} needs {required}=...",
            method.name()
        )));
    }
    // Files and stdin end in a newline the server must not see.
    for v in data.values_mut() {
        if let Value::String(text) = v {
            *text = text.trim_end_matches(['\n', '\r']).to_owned();
        }
    }
    let mount = args.path.clone().unwrap_or_else(|| method.name().to_owned());
    let mount = mount.trim_matches('/').trim_start_matches("auth/").to_owned();
    let c = conn(env, &args.common)?;
    let path = format!("auth/{mount}/login");
    let answer = c.call_as(None, "POST", &path, Some(&Value::Object(data))).await?;
    if answer.status >= 400 {
        return Err(api_error("Error authenticating", "POST", &url(&c, &path), &answer));
    }
    let token = answer.body["auth"]["client_token"].as_str().filter(|t| !t.is_empty());
    let token =
        token.ok_or_else(|| Exit::local("Error authenticating: the answer holds no auth.client_token"))?;
    logged_in(env, &args, token, &answer.body)
}

/// `login TOKEN`: the token is checked with lookup-self, then kept.
async fn login_with_token(env: &Env, args: LoginArgs) -> Result<(), Exit> {
    let given = match args.args.as_slice() {
        [one] => one.strip_prefix("token=").unwrap_or(one).to_owned(),
        _ => return Err(Exit::local("give one token (or - to read it from standard input)")),
    };
    let token = if given == "-" {
        let mut t = String::new();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t).map_err(Exit::local)?;
        t.trim().to_owned()
    } else {
        given
    };
    let c = conn(env, &args.common)?.with_token(&token);
    let answer = c.expect_ok("GET", "auth/token/lookup-self", None, "Error looking up token").await?;
    let d = answer.body.get("data").cloned().unwrap_or(Value::Null);
    let auth = json!({"auth": {"client_token": token, "accessor": d["accessor"], "lease_duration": d["ttl"],
        "renewable": d["renewable"], "token_policies": d["policies"], "identity_policies": [], "policies": d["policies"],
        "metadata": d["meta"]}});
    logged_in(env, &args, &token, &auth)
}

/// After a login: keeps the token (unless told not to) and prints what the Vault CLI prints.
fn logged_in(env: &Env, args: &LoginArgs, token: &str, body: &Value) -> Result<(), Exit> {
    if args.token_only {
        println!("{token}");
        return Ok(());
    }
    let stored = if args.no_store {
        None
    } else {
        let file =
            env.token_file().ok_or_else(|| Exit::local("HOME is not set: nowhere to keep the token"))?;
        write_private(&file, token)?;
        Some(file)
    };
    if args.common.field.is_none() && args.common.format == Format::Table {
        match &stored {
            Some(file) => println!(
                "Success! You are now authenticated. The token information displayed below is already stored in the \
                 token helper ({}). You do NOT need to run \"keymint login\" again.\n",
                file.display()
            ),
            None => {
                eprintln!(
                    "The token was not stored in the token helper. Set KEYMINT_TOKEN (or VAULT_TOKEN) or pass \
                     the token below with each request.\n"
                );
                println!("Success! You are now authenticated.\n");
            }
        }
    }
    output::print(body, args.common.format, args.common.field.as_deref())
}
