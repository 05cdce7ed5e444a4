//! `sdk-probe STS_ENDPOINT`: prints the ARN that GetCallerIdentity reports for whatever
//! credentials the Rust AWS SDK's default chain finds in its environment (for the tests: the
//! keymint agent, through `AWS_CONTAINER_CREDENTIALS_FULL_URI`).

use aws_config::{BehaviorVersion, Region};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = std::env::args().nth(1).ok_or("usage: sdk-probe STS_ENDPOINT")?;
    let config =
        aws_config::defaults(BehaviorVersion::latest()).region(Region::new("us-east-1")).load().await;
    let sts = aws_sdk_sts::Client::from_conf(
        aws_sdk_sts::config::Builder::from(&config).endpoint_url(endpoint).build(),
    );
    let who = sts.get_caller_identity().send().await?;
    println!("{}", who.arn().unwrap_or_default());
    Ok(())
}
