"""omnigym.environments"""
