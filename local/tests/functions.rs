//! The Lambda functions agree with the topology: one main per consuming queue (naming its
//! queue), an API and a relay per service, the sweep and the authorizer, and nothing else;
//! every binary `template.yaml` names exists.

use std::collections::BTreeSet;
use std::path::PathBuf;

use contract::Service;
use local::topology::CONSUMERS;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `(service directory, binary name)` of every `functions/*/src/bin/*.rs`.
fn binaries() -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for service in std::fs::read_dir(root().join("functions")).unwrap() {
        let service = service.unwrap().path();
        let Ok(bins) = std::fs::read_dir(service.join("src/bin")) else {
            continue;
        };
        for bin in bins {
            let bin = bin.unwrap().path();
            let name = bin.file_stem().unwrap().to_string_lossy().into_owned();
            found.insert((
                service.file_name().unwrap().to_string_lossy().into_owned(),
                name,
            ));
        }
    }
    found
}

fn expected() -> BTreeSet<(String, String)> {
    let mut expected = BTreeSet::new();
    for service in Service::ALL {
        let dir = service.name().to_owned();
        expected.insert((dir.clone(), format!("{dir}-api")));
        expected.insert((dir.clone(), format!("{dir}-relay")));
    }
    for consumer in CONSUMERS {
        expected.insert((
            consumer.service.name().to_owned(),
            consumer.queue.to_owned(),
        ));
    }
    expected.insert(("order".into(), "order-sweep".into()));
    expected.insert(("user".into(), "user-authorizer".into()));
    expected
}

#[test]
fn every_function_has_a_main_and_every_main_a_function() {
    assert_eq!(binaries(), expected());
}

#[test]
fn each_consumer_main_names_its_queue() {
    for consumer in CONSUMERS {
        let path = root().join(format!(
            "functions/{}/src/bin/{}.rs",
            consumer.service.name(),
            consumer.queue
        ));
        let source = std::fs::read_to_string(&path).unwrap();
        assert!(
            source.contains(&format!("\"{}\"", consumer.queue)),
            "{} does not run queue {}",
            path.display(),
            consumer.queue
        );
    }
}

#[test]
fn every_binary_the_template_names_exists() {
    let template = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let named: Vec<&str> = template
        .lines()
        .filter_map(|l| l.trim().strip_prefix("Binary: "))
        .collect();
    assert!(!named.is_empty());
    let bins: BTreeSet<String> = binaries().into_iter().map(|(_, b)| b).collect();
    for binary in named {
        assert!(
            bins.contains(binary),
            "template.yaml names {binary}, which has no main"
        );
    }
}
