// Package chaos holds the end-to-end chaos test of the vote pipeline's
// back half: real worker processes (built from cmd/worker) drain votes
// from a real Redis into a real PostgreSQL while the test SIGKILLs and
// restarts them and cuts their Redis and PostgreSQL connections; at the
// end every voter must have exactly one row holding their last vote and
// the tallies must equal a recount. Run it with
//
//	go test ./internal/chaos            (LADDER_CHAOS_VOTES=200000 for more voters)
//
// It is skipped under -short. The package has no non-test code.
package chaos
