//! Faults against the real servers: the sender killed mid-run, and an endpoint that fails for
//! a while and recovers. Each checks that every accepted event reached every subscribed
//! endpoint at least once, counts duplicates, and that the ledger holds every delivery.

mod faults;
