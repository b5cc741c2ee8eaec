"""omnigym.policies"""
