"""omnigym.sim_assets"""
