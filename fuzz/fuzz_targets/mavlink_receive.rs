//! See `patrol_fuzz::mavlink_receive`.
#![no_main]

use std::sync::LazyLock;

use firmware_bridge::signing::SigningKey;

static KEY: LazyLock<SigningKey> = LazyLock::new(|| SigningKey::from_passphrase(patrol_fuzz::FUZZ_SIGNING_PASSPHRASE));

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    patrol_fuzz::mavlink_receive(data, &KEY);
});
