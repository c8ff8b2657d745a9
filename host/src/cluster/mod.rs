//! Cluster access. Every Kubernetes call Wharf makes goes through [`ClusterClient`], a
//! kube-rs client; [`kubeconfig`] decides what a kubeconfig from outside may carry before
//! a client is built from it; [`sim`] is the embedded Kubernetes API simulator that the
//! client talks to when no real cluster is configured (in-process, and on a loopback HTTPS
//! port for kubectl).

pub mod client;
pub mod kubeconfig;
pub mod loopback;
pub mod sim;

pub use client::ClusterClient;

pub use loopback::LoopbackEndpoint;
pub use sim::{SimConfig, Simulator};
