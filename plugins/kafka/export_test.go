package kafka

// BrokersForTest returns the brokers TestMain set up, for the tests of
// package kafka_test.
func BrokersForTest() []string { return brokers }

// ConnectdForTest returns the connectd binary TestMain built.
func ConnectdForTest() string { return connectdBin }
