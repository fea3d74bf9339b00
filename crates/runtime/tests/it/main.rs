//! The runtime on a real listener, without Kafka: what a process answers while its services
//! wait for their dependencies, and how its start-up ends.

mod startup;
