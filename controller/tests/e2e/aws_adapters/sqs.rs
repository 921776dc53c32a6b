use stagehand::aws::sqs::QueueRef;

use super::{ACCOUNT, Env, REGION};

/// Creates queue `name` whose received messages come back after `visibility` seconds; its URL.
async fn create_queue(client: &aws_sdk_sqs::Client, name: &str, visibility: &str) -> String {
    client
        .create_queue()
        .queue_name(name)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::VisibilityTimeout,
            visibility,
        )
        .send()
        .await
        .unwrap()
        .queue_url()
        .unwrap()
        .to_owned()
}

/// Sends each of `bodies` to the queue at `url` (seeding, through the SDK).
async fn send_all(
    client: &aws_sdk_sqs::Client,
    url: &str,
    bodies: impl IntoIterator<Item = String>,
) {
    for body in bodies {
        client
            .send_message()
            .queue_url(url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn queues_resolve_by_name_or_arn_with_their_backlog() {
    let env = Env::start().await;
    let client = aws_sdk_sqs::Client::new(&env.sdk);
    let url = create_queue(&client, "orders", "30").await;
    send_all(&client, &url, (0..5).map(|i| format!("order {i}"))).await;
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

/// The event feed's calls: a long poll returns as soon as a message arrives (not after its
/// 20 s), takes at most ten, says how often each was delivered, and a batch delete removes
/// exactly what it names; what is not deleted comes back after the visibility timeout.
#[tokio::test]
async fn long_polls_return_on_arrival_and_undeleted_messages_come_back() {
    let env = Env::start().await;
    let client = aws_sdk_sqs::Client::new(&env.sdk);
    let url = create_queue(&client, "events", "1").await;
    let sqs = env.aws.sqs(REGION);

    // Nothing there yet: the poll waits; a message sent meanwhile ends it at once.
    let sender = {
        let (client, url) = (client.clone(), url.clone());
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(300)).await;
            client
                .send_message()
                .queue_url(&url)
                .message_body("first")
                .send()
                .await
                .unwrap();
        })
    };
    let started = std::time::Instant::now();
    let first = sqs
        .receive_messages(&url, stagehand::aws::sqs::LONG_POLL_WAIT)
        .await
        .unwrap();
    let waited = started.elapsed();
    sender.await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].body, "first");
    assert_eq!(first[0].receive_count, Some(1));
    assert!(waited < std::time::Duration::from_secs(5), "{waited:?}");
    eprintln!("long poll returned {waited:?} after the poll started (message sent at 300 ms)");

    send_all(&client, &url, (0..11).map(|i| format!("m{i}"))).await;
    // Undeleted, `first` is delivered again once its visibility timeout (1 s) is over.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let batch = sqs
        .receive_messages(&url, std::time::Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(batch.len(), stagehand::aws::sqs::MAX_MESSAGES_PER_CALL);
    let refs: Vec<&_> = batch.iter().collect();
    assert_eq!(sqs.delete_messages(&url, &refs).await.unwrap(), Vec::new());
    assert_eq!(sqs.delete_messages(&url, &[]).await.unwrap(), Vec::new());
    // Deleted: gone for good (the rest, two, come next).
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let rest = sqs
        .receive_messages(&url, std::time::Duration::from_secs(1))
        .await
        .unwrap();
    let deleted: Vec<&str> = batch.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert!(rest.iter().all(|m| !deleted.contains(&m.body.as_str())));
    // `first`, never deleted, came back once, counted as its second delivery.
    let again: Vec<_> = batch
        .iter()
        .chain(&rest)
        .filter(|m| m.body == "first")
        .collect();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].receive_count, Some(2));
    let calls = env.floor.calls().await.unwrap();
    assert_eq!(calls.count("sqs", "ReceiveMessage"), 3, "{calls:?}");
    assert_eq!(calls.count("sqs", "DeleteMessageBatch"), 1, "{calls:?}");
}
