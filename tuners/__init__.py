"""tuners: NAS search strategies (RNN controller, KerasTuner oracle and tuners) for nasnet_tf."""
