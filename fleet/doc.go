// Package fleet is certops' bus between publishers and gateway nodes,
// built on NATS JetStream key-value buckets. It is the only package that
// imports NATS.
//
// # What travels
//
// A publisher turns each valid revision into content-addressed blobs: one
// per entity (the entity as validated, secret references unresolved,
// literal private keys sealed with the fleet data key, AES-256-GCM), and
// manifest pages that list entity names and blob digests, each page
// holding the entities whose name hashes to it. A root lists the page
// digests, the Git revision and a sequence that only grows; it is signed
// with the publisher's Ed25519 key, and the signed root is the value of
// the fleet's head key, which moves by compare-and-set. A one-entity change
// therefore costs a node the root, one page and one blob, whatever the
// size of the fleet.
//
// # What a node refuses
//
// A node ([Node]) watches head, fetches only the pages and blobs it lacks
// (cached by digest in its data dir, still sealed), and refuses, with a
// [RefusalError], a root no trusted key signed, a page or blob whose
// digest does not match, a sequence not above the one applied, a sealed
// key it cannot open. Nothing refused reaches the caller as a revision.
//
// # Coordination
//
// Publishers elect a leader with a key in a bucket whose entries expire
// after the lease ([Election]); a standby takes over within two lease
// periods of the leader's last renewal. Nodes write records to a bucket
// whose entries expire ([Fleet.WriteRecord]); [Fleet.Status] reads them
// and [Fleet.Wait] watches them. The leader distributes session-ticket keys
// sealed with the data key ([TicketKeys]).
//
// Every expiry is a bucket-level MaxAge, so the package works with
// nats-server 2.9, which has no per-message TTL. All types are safe for
// concurrent use unless their documentation says otherwise.
package fleet
