//! placeholder until the SQL renderer lands
