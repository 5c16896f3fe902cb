package ballot

import "testing"

func TestValidVoterID(t *testing.T) {
	cases := map[string]bool{
		"0123456789abcdef":  true,
		"0123456789ABCDEF":  false,
		"0123456789abcde":   false,
		"0123456789abcdef0": false,
		"0123456789abcdeg":  false,
		"":                  false,
	}
	for in, want := range cases {
		if got := ValidVoterID(in); got != want {
			t.Errorf("ValidVoterID(%q) = %v, want %v", in, got, want)
		}
	}
	id, err := NewVoterID()
	if err != nil || !ValidVoterID(id) {
		t.Fatalf("NewVoterID() = %q, %v; not valid", id, err)
	}
}

func TestPayloadRoundTrip(t *testing.T) {
	v := Vote{VoterID: "00000000000000ff", Option: OptionB, CastAt: 42}
	b, err := Encode(v, "host1")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(b)
	if err != nil || got != v {
		t.Fatalf("Decode(Encode(v)) = %+v, %v; want %+v", got, err, v)
	}
	for _, bad := range []string{`{}`, `{"voter_id":"00000000000000ff","vote":"c","ts":1}`, `{"voter_id":"x","vote":"a","ts":1}`, `{"voter_id":"00000000000000ff","vote":"a"}`, `nope`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%s) accepted an invalid payload", bad)
		}
	}
}

func TestLatest(t *testing.T) {
	in := []Vote{
		{VoterID: "1111111111111111", Option: "a", CastAt: 5},
		{VoterID: "2222222222222222", Option: "a", CastAt: 1},
		{VoterID: "1111111111111111", Option: "b", CastAt: 9},
		{VoterID: "1111111111111111", Option: "a", CastAt: 7},
	}
	got := Latest(in)
	if len(got) != 2 || got[0].Option != "b" || got[0].CastAt != 9 || got[1].VoterID != "2222222222222222" {
		t.Fatalf("Latest = %+v", got)
	}
}
