package kafka

// BrokersForTest returns the brokers TestMain set up, for the tests of
// package kafka_test.
func BrokersForTest() []string { return brokers }

// ConnectdForTest returns the connectd binary TestMain built.
func ConnectdForTest() string { return connectdBin }

// StartBrokerForTest starts a broker of its own (testenv/kafka with flags)
// in dir, for the tests of package kafka_test; it dies with this process.
func StartBrokerForTest(dir string, flags ...string) ([]string, func(), error) {
	return startBroker(dir, flags...)
}
