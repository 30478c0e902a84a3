//! The one integration test binary: real Git repositories, the real `pgitops` binary.

mod corpus;
mod plan_props;
mod plan_rows;
mod support;
