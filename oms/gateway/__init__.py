"""The FIX gateway: client acceptor sessions in, the venue initiator session out, the OMS service in between."""
