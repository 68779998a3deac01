module.exports = () => require('./kafka-broker').setup();
