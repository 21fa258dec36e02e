package postgres

// ConnectdForTest returns the connectd binary TestMain built, for the tests
// of package postgres_test.
func ConnectdForTest() string { return bin }

// URLForTest returns the server TestMain set up.
func URLForTest() string { return pgURL }
