//! zapin-benches: criterion benches over the hot paths (see `benches/`), and the home of the
//! sessions-per-node load bench. Numbers and the commands that produced them live in RESULTS.md.
