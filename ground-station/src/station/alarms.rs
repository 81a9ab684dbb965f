//! Station alarms: faults the station cannot fix by itself and an operator must see, such as an evidence folder
//! that can no longer be written (a full disk). Each change is committed to the outbox and published retained on
//! `<prefix>/alarms/<alarm>` (the command center's view), and pushed to the console (a banner on every page).
//!
//! An alarm is published when it is raised, when it clears, and once at each start with the state found then, so
//! a retained "raised" from a previous run never outlives the fault.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

use crate::hazard::{AlarmKind, StationAlarm};
use crate::mqtt::MqttHandle;
use crate::storage::StorageHandle;

/// The station's alarms: cheap to clone, shared by the parts that detect faults and the console.
#[derive(Debug, Clone)]
pub struct Alarms {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    station_id: String,
    storage: StorageHandle,
    mqtt: MqttHandle,
    /// The latest state of every alarm published since the start (cleared ones included).
    state: watch::Sender<BTreeMap<AlarmKind, StationAlarm>>,
}

impl Alarms {
    /// No alarm yet; changes go to `storage`'s outbox and `mqtt`.
    pub fn new(station_id: impl Into<String>, storage: StorageHandle, mqtt: MqttHandle) -> Self {
        let (state, _) = watch::channel(BTreeMap::new());
        Self { inner: Arc::new(Inner { station_id: station_id.into(), storage, mqtt, state }) }
    }

    /// Raises `kind` (logged as an error, published, shown) unless it is raised already.
    pub async fn raise(&self, kind: AlarmKind, message: impl Into<String>) {
        if !self.is_active(kind) {
            self.change(kind, true, message.into(), false).await;
        }
    }

    /// Clears `kind` if it is raised. Cheap when it is not (it is called after every evidence save).
    pub async fn clear(&self, kind: AlarmKind, message: impl Into<String>) {
        if self.is_active(kind) {
            self.change(kind, false, message.into(), false).await;
        }
    }

    fn is_active(&self, kind: AlarmKind) -> bool {
        self.inner.state.borrow().get(&kind).is_some_and(|alarm| alarm.active)
    }

    /// Publishes the state of `kind` as found now, whatever was published before (at start).
    pub async fn publish_state(&self, kind: AlarmKind, active: bool, message: impl Into<String>) {
        self.change(kind, active, message.into(), true).await;
    }

    /// The alarms raised now.
    pub fn active(&self) -> Vec<StationAlarm> {
        self.inner.state.borrow().values().filter(|alarm| alarm.active).cloned().collect()
    }

    /// Every change, as the map of the latest state per alarm.
    pub fn subscribe(&self) -> watch::Receiver<BTreeMap<AlarmKind, StationAlarm>> {
        self.inner.state.subscribe()
    }

    async fn change(&self, kind: AlarmKind, active: bool, message: String, always: bool) {
        let alarm = StationAlarm {
            alarm: kind,
            station_id: self.inner.station_id.clone(),
            active,
            message,
            at: SystemTime::now(),
        };
        let changed = self.inner.state.send_if_modified(|alarms| {
            let was_active = alarms.get(&kind).is_some_and(|alarm| alarm.active);
            if was_active == active && !always {
                return false;
            }
            alarms.insert(kind, alarm.clone());
            true
        });
        if !changed {
            return;
        }
        if active {
            tracing::error!(alarm = kind.as_str(), message = %alarm.message, "Station alarm raised.");
        } else {
            tracing::info!(alarm = kind.as_str(), message = %alarm.message, "Station alarm cleared.");
        }
        let outbox = self.inner.mqtt.topics().alarm_message(&alarm);
        match self.inner.storage.call(move |db| db.outbox_append(&[outbox])).await {
            Ok(_) => self.inner.mqtt.outbox_changed(),
            Err(error) => tracing::error!(alarm = kind.as_str(), %error, "Cannot store the alarm for MQTT."),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use rumqttc::MqttOptions;
    use tokio_util::sync::CancellationToken;
    use tokio_util::task::TaskTracker;

    use super::*;
    use crate::mqtt::{self, ConnectOptions, Topics};
    use crate::storage::Database;

    /// Alarms over an in-memory database and an MQTT client whose broker never answers (the outbox keeps all).
    fn alarms() -> (Alarms, StorageHandle, CancellationToken) {
        let (storage, _) = StorageHandle::start(Database::open_in_memory().unwrap()).unwrap();
        let unused = SocketAddr::from(([127, 0, 0, 1], 9));
        let options = ConnectOptions::new(
            MqttOptions::new("alarms-test", unused.ip().to_string(), unused.port()),
            Topics::new("patrol"),
        );
        let cancel = CancellationToken::new();
        let mqtt = mqtt::spawn(options, storage.clone(), &TaskTracker::new(), cancel.clone());
        (Alarms::new("gs-1", storage.clone(), mqtt), storage, cancel)
    }

    async fn published(storage: &StorageHandle) -> Vec<(String, StationAlarm, bool)> {
        let pending = storage.call(|db| db.outbox_pending(0, 100)).await.unwrap();
        pending
            .into_iter()
            .map(|entry| {
                let alarm = serde_json::from_slice(&entry.message.payload).unwrap();
                (entry.message.topic, alarm, entry.message.retain)
            })
            .collect()
    }

    #[tokio::test]
    async fn an_alarm_is_published_once_when_raised_and_once_when_cleared() {
        let (alarms, storage, cancel) = alarms();
        let mut changes = alarms.subscribe();
        alarms.raise(AlarmKind::EvidenceStorage, "No space left on device").await;
        alarms.raise(AlarmKind::EvidenceStorage, "No space left on device, again").await;
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        assert_eq!(alarms.active().len(), 1);
        assert_eq!(alarms.active()[0].message, "No space left on device");

        alarms.clear(AlarmKind::EvidenceStorage, "saved again").await;
        alarms.clear(AlarmKind::EvidenceStorage, "saved again").await;
        assert!(changes.has_changed().unwrap());
        assert!(alarms.active().is_empty());

        let sent = published(&storage).await;
        let states: Vec<bool> = sent.iter().map(|(_, alarm, _)| alarm.active).collect();
        assert_eq!(states, [true, false], "one message per change");
        for (topic, alarm, retain) in &sent {
            assert_eq!(topic, "patrol/alarms/evidence_storage");
            assert_eq!(alarm.station_id, "gs-1");
            assert!(retain, "alarm states are retained");
        }
        cancel.cancel();
    }

    #[tokio::test]
    async fn the_state_at_start_is_published_even_when_nothing_is_wrong() {
        let (alarms, storage, cancel) = alarms();
        alarms.publish_state(AlarmKind::EvidenceStorage, false, "evidence folder writable").await;
        // A clear with nothing raised publishes nothing more.
        alarms.clear(AlarmKind::EvidenceStorage, "saved").await;
        let sent = published(&storage).await;
        assert_eq!(sent.len(), 1);
        assert!(!sent[0].1.active);
        cancel.cancel();
    }
}
