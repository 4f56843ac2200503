"""Binding sites per residue: labelled chains, a teacher site head, site KD into students,
`ppi sites` and interface maps that combine pairing with the two site profiles (issue 45)."""
