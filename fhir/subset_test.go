package fhir

import "testing"

func TestSubset(t *testing.T) {
	body := []byte(`{"active":true,"birthDate":"1974-12-25","deceasedBoolean":false,"id":"p","meta":{"versionId":"1"},"multipleBirthInteger":2,"name":[{"family":"C"}],"photo":[{"title":"x"}],"resourceType":"Patient","text":{"div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>","status":"generated"}}`)
	tag := `"tag":[{"code":"SUBSETTED","system":"http://terminology.hl7.org/CodeSystem/v3-ObservationValue"}]`
	tests := []struct {
		summary  string
		elements []string
		want     string
	}{
		{"", nil, string(body)},
		{"false", nil, string(body)},
		{"true", nil, `{"active":true,"birthDate":"1974-12-25","deceasedBoolean":false,"id":"p","meta":{` + tag + `,"versionId":"1"},"name":[{"family":"C"}],"resourceType":"Patient"}`},
		{"text", nil, `{"id":"p","meta":{` + tag + `,"versionId":"1"},"resourceType":"Patient","text":{"div":"<div xmlns=\"http://www.w3.org/1999/xhtml\">x</div>","status":"generated"}}`},
		{"data", nil, `{"active":true,"birthDate":"1974-12-25","deceasedBoolean":false,"id":"p","meta":{` + tag + `,"versionId":"1"},"multipleBirthInteger":2,"name":[{"family":"C"}],"photo":[{"title":"x"}],"resourceType":"Patient"}`},
		{"", []string{"birthDate", "multipleBirth[x]"}, `{"birthDate":"1974-12-25","id":"p","meta":{` + tag + `,"versionId":"1"},"multipleBirthInteger":2,"resourceType":"Patient"}`},
	}
	for _, tt := range tests {
		got, err := Subset(body, "Patient", tt.summary, tt.elements)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tt.want {
			t.Errorf("Subset(%q, %v) =\n%s\nwant\n%s", tt.summary, tt.elements, got, tt.want)
		}
	}
	// Observation's mandatory status and code survive _elements.
	obs := []byte(`{"code":{"text":"x"},"id":"o","resourceType":"Observation","status":"final","subject":{"reference":"Patient/p"},"valueQuantity":{"value":1}}`)
	got, _ := Subset(obs, "Observation", "", []string{"subject"})
	want := `{"code":{"text":"x"},"id":"o","meta":{` + tag + `},"resourceType":"Observation","status":"final","subject":{"reference":"Patient/p"}}`
	if string(got) != want {
		t.Errorf("Observation _elements=subject:\n%s\nwant\n%s", got, want)
	}
}
