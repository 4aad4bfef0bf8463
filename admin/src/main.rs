//! `shop-admin`: the operators' command line.
//!
//! ```text
//! shop-admin dlq list                                    # every DLQ and relay-failure queue, with its depth
//! shop-admin dlq show product-order-created-dead-letters --max 5
//! shop-admin dlq redrive product-order-created-dead-letters --all
//! shop-admin order <orderId>
//! shop-admin grant-role --email boss@shop.kr             # the user table of the system
//! shop-admin --stack shop dlq list                       # a deployed stack, by its outputs
//! ```
//!
//! Exit codes: 0 done, 1 failed, 2 the command line was wrong.

use std::process::ExitCode;
use std::sync::Arc;

use clap::{ArgGroup, Args, Parser, Subcommand, ValueEnum};
use contract::Service;
use platform::docstore::dynamodb::DynamoDocStore;
use platform::identity::Role;
use shop_admin::dlq::{self, AwsQueues, Pick};
use shop_admin::system::{Location, System, local_name};
use shop_admin::{AdminError, Who, grant_role, message, saga};

#[derive(Parser)]
#[command(
    name = "shop-admin",
    about = "Operators' commands, run with AWS credentials (the usual AWS_* environment, \
             AWS_ENDPOINT_URL for LocalStack)"
)]
struct Cli {
    #[command(flatten)]
    location: LocationArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct LocationArgs {
    /// A deployed stack, by name: its outputs name the dead-letter queues (`…DeadLettersUrl`),
    /// the relay-failure queues (`…RelayFailuresUrl`) and the tables (`<Service>TableName`).
    /// With it, --prefix is not used.
    #[arg(long, global = true)]
    stack: Option<String>,
    /// The local system on AWS APIs (`cargo run -p local` with AWS_ENDPOINT_URL): its names
    /// are template.yaml's under this prefix.
    #[arg(
        long,
        global = true,
        env = "STACK_PREFIX",
        default_value = "shop-local-"
    )]
    prefix: String,
}

impl LocationArgs {
    fn location(self) -> Location {
        match self.stack {
            Some(stack) => Location::Stack(stack),
            None => Location::Prefix(self.prefix),
        }
    }
}

#[derive(Subcommand)]
enum Command {
    /// The dead-letter queues (events a consumer could not handle) and the relays'
    /// failure queues.
    #[command(subcommand)]
    Dlq(DlqCommand),
    /// An order's saga: its state, each step's state, and every event of it as the order
    /// service saw them.
    Order {
        /// The order's id.
        order_id: String,
    },
    /// Gives a signed-up user a role (the first admin's bootstrap; later admins can use
    /// `PUT /users/{userId}/role`).
    GrantRole {
        #[command(flatten)]
        user: UserArgs,
        #[arg(long, value_enum, default_value = "admin")]
        role: RoleArg,
    },
    /// Takes a user's admin role away (makes them a customer).
    RevokeRole {
        #[command(flatten)]
        user: UserArgs,
    },
}

#[derive(Subcommand)]
enum DlqCommand {
    /// Every dead-letter and relay-failure queue with its depth.
    List,
    /// A queue's messages, decoded, left in the queue.
    Show {
        /// The queue: its name (`product-order-created-dead-letters`) or logical id.
        queue: String,
        /// At most this many messages.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=1000))]
        max: u16,
    },
    /// Moves a dead-letter queue's messages back to the queue they came from: one, or all
    /// it holds now (not those that arrive meanwhile).
    #[command(group(ArgGroup::new("which").required(true).args(["message_id", "all"])))]
    Redrive {
        /// The dead-letter queue: its name or logical id.
        queue: String,
        /// Only this message (its id, as `dlq show` prints it).
        #[arg(long)]
        message_id: Option<String>,
        /// Every message it holds now.
        #[arg(long)]
        all: bool,
    },
}

/// The messages a redrive moves: clap's required group lets through exactly one of
/// `--message-id` and `--all`, so without an id it is all.
fn pick(message_id: Option<String>) -> Pick {
    message_id.map_or(Pick::All, Pick::Message)
}

#[derive(Args)]
struct UserArgs {
    /// The user table; by default the system's (`UserTableName`, or the prefix's `user`).
    #[arg(long, env = "USER_TABLE")]
    table: Option<String>,
    /// The user, by the e-mail address they signed up with. Prefer --user-id for the
    /// first admin: anyone may have signed up with an address before its owner.
    #[arg(long, conflicts_with = "user_id", required_unless_present = "user_id")]
    email: Option<String>,
    /// The user, by id.
    #[arg(long)]
    user_id: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    Admin,
    Customer,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shop-admin: {e}");
            ExitCode::from(if e.is_usage() { 2 } else { 1 })
        }
    }
}

async fn run(cli: Cli) -> Result<(), AdminError> {
    let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let location = cli.location.location();
    match cli.command {
        Command::Dlq(command) => {
            let system = System::find(&sdk, location).await?;
            let queues = AwsQueues(aws_sdk_sqs::Client::new(&sdk));
            dlq_command(&system, &queues, command).await
        }
        Command::Order { order_id } => {
            if !contract::is_valid_id(&order_id) {
                return Err(AdminError::Usage(format!(
                    "{order_id:?} is no order id (1 to 100 ASCII letters, digits, - or _)"
                )));
            }
            let system = System::find(&sdk, location).await?;
            let table = system.table(Service::Order)?;
            let store = Arc::new(DynamoDocStore::new(
                aws_sdk_dynamodb::Client::new(&sdk),
                table,
            ));
            match saga::saga(store, &order_id).await? {
                Some(found) => {
                    print!("{}", saga::render(&found));
                    Ok(())
                }
                None => Err(AdminError::Missing(format!(
                    "no order {order_id} in table {table}"
                ))),
            }
        }
        Command::GrantRole { user, role } => {
            let role = match role {
                RoleArg::Admin => Role::Admin,
                RoleArg::Customer => Role::Customer,
            };
            set_role(&sdk, location, user, role).await
        }
        Command::RevokeRole { user } => set_role(&sdk, location, user, Role::Customer).await,
    }
}

async fn dlq_command(
    system: &System,
    queues: &AwsQueues,
    command: DlqCommand,
) -> Result<(), AdminError> {
    match command {
        DlqCommand::List => {
            let rows = dlq::list(queues, system).await?;
            print!("{}", dlq::render_list(&rows));
        }
        DlqCommand::Show { queue, max } => {
            let queue = system.queue(&queue)?;
            let url = system.url(queue).await?;
            let messages = dlq::peek(queues, &url, usize::from(max)).await?;
            println!(
                "{}: {} message(s) shown, left in the queue",
                queue.name,
                messages.len()
            );
            for m in &messages {
                print!("\n{}", message::render(&message::decode(m)));
            }
        }
        DlqCommand::Redrive {
            queue,
            message_id,
            all: _,
        } => {
            let pick = pick(message_id);
            let queue = system.queue(&queue)?;
            let source = dlq::redrive_source(queue)?;
            let source_url = system.source_url(source).await?;
            let url = system.url(queue).await?;
            let report = dlq::redrive(queues, &url, &source_url, &pick, &mut |m| {
                println!("{}", dlq::render_moved(m))
            })
            .await?;
            println!(
                "{} of the {} message(s) {} held moved back to {}",
                report.moved.len(),
                report.held,
                queue.name,
                local_name(source)
            );
        }
    }
    Ok(())
}

async fn set_role(
    sdk: &aws_config::SdkConfig,
    location: Location,
    user: UserArgs,
    role: Role,
) -> Result<(), AdminError> {
    let who = match (user.email, user.user_id) {
        (Some(email), _) => Who::Email(email),
        (None, Some(id)) => Who::UserId(id),
        (None, None) => {
            return Err(AdminError::Usage(
                "name the user with --email or --user-id".into(),
            ));
        }
    };
    let table = match user.table {
        Some(table) => table,
        None => System::find(sdk, location)
            .await?
            .table(Service::User)?
            .to_owned(),
    };
    let user = grant_role(aws_sdk_dynamodb::Client::new(sdk), &table, &who, role).await?;
    println!(
        "{} ({}, {:?}, signed up {}) is now {}",
        user.user_id,
        user.email.as_str(),
        user.name.as_str(),
        user.created_at.to_rfc3339(),
        role.as_str()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    use super::*;

    fn redrive(args: &[&str]) -> Result<Pick, ErrorKind> {
        let line = ["shop-admin", "dlq", "redrive", "q"].iter().chain(args);
        match Cli::try_parse_from(line).map_err(|e| e.kind())?.command {
            Command::Dlq(DlqCommand::Redrive { message_id, .. }) => Ok(pick(message_id)),
            _ => Err(ErrorKind::InvalidSubcommand),
        }
    }

    #[test]
    fn a_redrive_names_one_message_or_all_and_never_neither_or_both() {
        Cli::command().debug_assert();
        assert_eq!(redrive(&["--all"]), Ok(Pick::All));
        assert_eq!(
            redrive(&["--message-id", "m-1"]),
            Ok(Pick::Message("m-1".into()))
        );
        assert_eq!(redrive(&[]), Err(ErrorKind::MissingRequiredArgument));
        assert_eq!(
            redrive(&["--all", "--message-id", "m-1"]),
            Err(ErrorKind::ArgumentConflict)
        );
    }
}
