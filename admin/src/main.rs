//! `shop-admin grant-role --table <UserTable> --email boss@shop.kr --role admin`

use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use platform::identity::Role;
use shop_admin::{Who, grant_role};

#[derive(Parser)]
#[command(
    name = "shop-admin",
    about = "Operators' commands, run with AWS credentials"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Gives a signed-up user a role (the first admin's bootstrap; later admins can use
    /// `PUT /users/{userId}/role`).
    GrantRole {
        /// The user table (the stack's `UserTableName` output; `USER_TABLE`).
        #[arg(long, env = "USER_TABLE")]
        table: String,
        /// The user, by the e-mail address they signed up with. Prefer --user-id for the
        /// first admin: anyone may have signed up with an address before its owner.
        #[arg(long, conflicts_with = "user_id", required_unless_present = "user_id")]
        email: Option<String>,
        /// The user, by id.
        #[arg(long)]
        user_id: Option<String>,
        #[arg(long, value_enum, default_value = "admin")]
        role: RoleArg,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Customer,
}

#[tokio::main]
async fn main() -> ExitCode {
    let Command::GrantRole {
        table,
        email,
        user_id,
        role,
    } = Cli::parse().command;
    let who = match (email, user_id) {
        (Some(email), _) => Who::Email(email),
        (None, Some(id)) => Who::UserId(id),
        (None, None) => {
            eprintln!("shop-admin: name the user with --email or --user-id");
            return ExitCode::from(2);
        }
    };
    let role = match role {
        RoleArg::Admin => Role::Admin,
        RoleArg::Customer => Role::Customer,
    };
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    match grant_role(aws_sdk_dynamodb::Client::new(&sdk), &table, &who, role).await {
        Ok(user) => {
            println!(
                "{} ({}, {:?}, signed up {}) is now {}",
                user.user_id,
                user.email.as_str(),
                user.name.as_str(),
                user.created_at.to_rfc3339(),
                role.as_str()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("shop-admin: {e}");
            ExitCode::FAILURE
        }
    }
}
