use stagehand::aws::sqs::QueueRef;

use super::{ACCOUNT, Env, REGION};

#[tokio::test]
async fn queues_resolve_by_name_or_arn_with_their_backlog() {
    let env = Env::start().await;
    let client = aws_sdk_sqs::Client::new(&env.sdk);
    let url = client
        .create_queue()
        .queue_name("orders")
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned();
    for i in 0..5 {
        client
            .send_message()
            .queue_url(&url)
            .message_body(format!("order {i}"))
            .send()
            .await
            .unwrap();
    }
    // Two received and not deleted: in flight.
    let received = client
        .receive_message()
        .queue_url(&url)
        .max_number_of_messages(2)
        .visibility_timeout(300)
        .send()
        .await
        .unwrap();
    assert_eq!(received.messages().len(), 2);

    let sqs = env.aws.sqs(REGION);
    let arn = format!("arn:aws:sqs:{REGION}:{ACCOUNT}:orders");
    for name_or_arn in ["orders", arn.as_str()] {
        let queue = sqs.resolve(name_or_arn).await.unwrap().unwrap();
        assert_eq!(queue.arn, arn);
        assert_eq!(queue.url, url);
        assert_eq!((queue.visible, queue.in_flight), (3, 2), "{name_or_arn}");
    }
    assert_eq!(sqs.resolve("no-such-queue").await.unwrap(), None);
    assert_eq!(
        sqs.queue_url(&QueueRef::parse("no-such-queue"))
            .await
            .unwrap(),
        None
    );
    env.report("sqs");
}
