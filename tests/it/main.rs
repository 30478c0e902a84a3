//! The one integration test binary: real Git repositories, the real `pgitops` binary.

mod corpus;
